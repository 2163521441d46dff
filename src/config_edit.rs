//! Placeholder: config file editing (being written).
