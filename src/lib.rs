//! towerhook
