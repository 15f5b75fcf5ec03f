//! # gen-metrics-cas: Classification Accuracy Score
//!
//! **Owns:** CAS (Ravuri & Vinyals 2019): a multinomial logistic-regression
//! classifier trained on labelled generated features and tested on labelled
//! real features; top-1/top-5 and per-class accuracy, and the gap to the same
//! classifier trained on real data.
//!
//! **Must not:** extract features or read files.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod error;
pub mod logistic;
pub mod score;

pub use error::CasError;
pub use logistic::{LogisticModel, LogisticRegression};
pub use score::{CasReport, ClassificationAccuracyScore, LabelledFeatures};
