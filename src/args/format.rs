//! The output formats: what `-o` prints on stdout and `--report` writes to a file.

use clap::ValueEnum;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
    Yaml,
    /// Text with node and container.
    Wide,
    /// JUnit XML (the junit-10.xsd shape CI test reporters read).
    Junit,
    /// Markdown (as the GitHub job summary).
    Markdown,
}

/// Formats of `--report FORMAT=PATH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Json,
    Yaml,
    Junit,
    Markdown,
}
