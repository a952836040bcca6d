//! The Earley parser over lexemes: the flat CFG and the chart.

pub(crate) mod cfg;
pub(crate) mod chart;
