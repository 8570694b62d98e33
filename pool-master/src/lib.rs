//! The pool master (in progress).
