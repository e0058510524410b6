//! Vivaldi network coordinates, as Serf's `coordinate` package computes them: an
//! 8-dimensional Euclidean position plus a height, adjusted after every round-trip
//! measurement against another member's coordinate; the distance between two coordinates
//! estimates their round-trip time.

pub use crate::types::Coordinate;
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use crate::types::{COORD_DIMENSIONALITY as DIMENSIONALITY, COORD_ERROR_MAX as ERROR_MAX};
const CE: f64 = 0.25;
const CC: f64 = 0.25;
const ADJUSTMENT_WINDOW: usize = 20;
const LATENCY_FILTER: usize = 3;
const GRAVITY_RHO: f64 = 150.0;
const ZERO_THRESHOLD: f64 = 1.0e-6;

/// This member's coordinate and what it needs to update it.
#[derive(Debug, Default)]
pub struct Client {
    pub coord: Coordinate,
    origin: Coordinate,
    adjustment_samples: VecDeque<f64>,
    latency: HashMap<String, VecDeque<f64>>,
}

impl Client {
    /// A client at the origin.
    pub fn new() -> Self {
        Client {
            adjustment_samples: VecDeque::new(),
            ..Default::default()
        }
    }

    /// Feed one measured round trip to `node`, whose coordinate is `other`.
    pub fn update(&mut self, node: &str, other: &Coordinate, rtt: Duration) {
        let rtt_s = rtt.as_secs_f64();
        if !(0.0..=10.0).contains(&rtt_s)
            || other.vec.len() != DIMENSIONALITY
            || other.vec.iter().any(|x| !x.is_finite())
        {
            return;
        }
        // Median filter of the last few samples per node.
        let samples = self.latency.entry(node.to_string()).or_default();
        samples.push_back(rtt_s);
        if samples.len() > LATENCY_FILTER {
            samples.pop_front();
        }
        let mut sorted: Vec<f64> = samples.iter().copied().collect();
        sorted.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        let rtt_s = sorted[sorted.len() / 2];

        // Vivaldi update.
        let c = &self.coord;
        let dist = c.raw_distance(other);
        let rtt_s = rtt_s.max(ZERO_THRESHOLD);
        let wrongness = (dist - rtt_s).abs() / rtt_s;
        let total_error = (c.error + other.error).max(ZERO_THRESHOLD);
        let weight = c.error / total_error;
        let mut next = c.clone();
        next.error = (CE * weight * wrongness + c.error * (1.0 - CE * weight)).min(ERROR_MAX);
        let force = CC * weight * (rtt_s - dist);
        next = next.apply_force(force, other);

        // Adjustment term.
        self.adjustment_samples
            .push_back(rtt_s - next.raw_distance(other));
        if self.adjustment_samples.len() > ADJUSTMENT_WINDOW {
            self.adjustment_samples.pop_front();
        }
        next.adjustment =
            self.adjustment_samples.iter().sum::<f64>() / (2.0 * ADJUSTMENT_WINDOW as f64);

        // Gravity back toward the origin keeps the system from drifting.
        let g = next.raw_distance(&self.origin) / GRAVITY_RHO;
        next = next.apply_force(-(g * g), &self.origin);
        if next.vec.iter().all(|x| x.is_finite()) && next.height.is_finite() {
            self.coord = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converges_toward_measured_rtt() {
        let mut a = Client::new();
        let mut b = Client::new();
        let rtt = Duration::from_millis(10);
        for _ in 0..200 {
            let bc = b.coord.clone();
            a.update("b", &bc, rtt);
            let ac = a.coord.clone();
            b.update("a", &ac, rtt);
        }
        let est = a.coord.distance_to(&b.coord).as_secs_f64();
        assert!(
            (est - 0.010).abs() < 0.003,
            "estimate {est}s for a 10 ms link"
        );
        assert!(a.coord.error < ERROR_MAX);
    }

    #[test]
    fn ignores_bad_samples() {
        let mut a = Client::new();
        let before = a.coord.clone();
        a.update(
            "x",
            &Coordinate {
                vec: vec![f64::NAN; 8],
                ..Default::default()
            },
            Duration::from_millis(5),
        );
        a.update("x", &Coordinate::default(), Duration::from_secs(100));
        assert_eq!(a.coord, before);
    }
}
