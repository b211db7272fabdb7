//! Byte strings searched for in every line, each with its searcher built once: building one for
//! every line cost more than some of the searches.

use memchr::memmem::{FindIter, Finder};
use std::sync::LazyLock;

/// A fixed byte string and its searcher, built on first use (see [`needle!`]).
pub(crate) struct Needle(pub(crate) LazyLock<Finder<'static>>);

/// `needle!(b"...")`: a [`Needle`] for a `static`.
macro_rules! needle {
    ($bytes:expr) => {
        $crate::falco::needle::Needle(std::sync::LazyLock::new(|| {
            memchr::memmem::Finder::new($bytes)
        }))
    };
}
pub(crate) use needle;

impl Needle {
    /// Where it first stands in `hay`.
    pub(crate) fn find(&self, hay: &[u8]) -> Option<usize> {
        self.0.find(hay)
    }

    /// Every place it stands in `hay`.
    pub(crate) fn find_iter<'h>(&'h self, hay: &'h [u8]) -> FindIter<'h, 'h> {
        self.0.find_iter(hay)
    }
}
