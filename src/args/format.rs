//! The output format: one type for stdout (`-o`) and the `--report` files, whose text formats
//! are stdout's only.

use clap::ValueEnum;

/// A format a result is written in.
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

impl OutputFormat {
    /// Text for a person (`text`, `wide`): live alerts and workflow commands may share stdout
    /// with it, and it is never a `--report` (a file is for a machine).
    pub fn is_text(self) -> bool {
        matches!(self, OutputFormat::Text | OutputFormat::Wide)
    }
}
