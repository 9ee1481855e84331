//! Progress reports of a training run: a bar on a terminal, plain lines in logs.

use std::io::{IsTerminal, Write};

/// Where a run stands after a step.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// Steps taken.
    pub step: u64,
    /// Steps of the whole run.
    pub total_steps: u64,
    /// Current epoch, 1-based.
    pub epoch: u64,
    /// Epochs of the run.
    pub epochs: u64,
    /// Batches of this epoch taken.
    pub batch: u64,
    /// Batches per epoch.
    pub batches: u64,
    /// The mean loss of this epoch so far.
    pub loss: f64,
    /// The last step's metrics.
    pub metrics: Vec<(&'static str, f64)>,
    /// Mean forward NFE per step so far (0 for models without an ODE).
    pub nfe_forward: f64,
    /// Mean backward NFE per step so far.
    pub nfe_backward: f64,
    /// Seconds of the last step.
    pub step_seconds: f64,
    /// Seconds of training so far (across resumes).
    pub elapsed: f64,
    /// Estimated seconds left.
    pub eta: f64,
    /// Peak heap bytes so far, when measured.
    pub peak_bytes: Option<usize>,
}

impl Progress {
    /// One line: epoch, batch, loss, metrics, NFE (when there is an ODE), times.
    pub fn line(&self) -> String {
        let mut s = format!(
            "epoch {}/{} batch {}/{}  loss {:.4}",
            self.epoch, self.epochs, self.batch, self.batches, self.loss
        );
        for (name, v) in &self.metrics {
            s.push_str(&format!("  {name} {v:.4}"));
        }
        if self.nfe_forward > 0.0 || self.nfe_backward > 0.0 {
            s.push_str(&format!("  NFE {:.1}/{:.1}", self.nfe_forward, self.nfe_backward));
        }
        s.push_str(&format!(
            "  {:.0} ms/step  {:.0}s, ~{:.0}s left",
            1e3 * self.step_seconds,
            self.elapsed,
            self.eta
        ));
        s
    }
}

/// Hooks a training run calls.
pub trait Callback {
    /// After every step.
    fn on_step(&mut self, _progress: &Progress) {}
    /// After an evaluation.
    fn on_eval(&mut self, _step: u64, _metrics: &[(String, f64)]) {}
    /// When a training state was saved.
    fn on_checkpoint(&mut self, _step: u64, _path: &std::path::Path) {}
}

/// No output.
pub struct Quiet;
impl Callback for Quiet {}

/// Prints progress: a single rewritten line on a terminal, otherwise about `lines` plain
/// lines over the run (evenly spaced, the last step included), prefixed by `label`.
pub struct Printer {
    /// Printed before every line.
    pub label: String,
    /// Plain lines over the whole run in a log.
    pub lines: u64,
    tty: bool,
}

impl Printer {
    /// A printer; a terminal gets the rewritten line unless `CI` is set.
    pub fn new(label: &str) -> Self {
        let tty = std::io::stdout().is_terminal() && std::env::var_os("CI").is_none();
        Printer { label: label.to_string(), lines: 10, tty }
    }

    /// Sets the number of plain lines over the run.
    pub fn lines(mut self, n: u64) -> Self {
        self.lines = n.max(1);
        self
    }
}

impl Callback for Printer {
    fn on_step(&mut self, p: &Progress) {
        if self.tty {
            let width = 24;
            let done = (p.step.saturating_mul(width as u64))
                .checked_div(p.total_steps)
                .map_or(width, |d| d as usize)
                .min(width);
            print!(
                "\r{} [{}{}] {}\x1b[K",
                self.label,
                "#".repeat(done),
                " ".repeat(width - done),
                p.line()
            );
            if p.step == p.total_steps {
                println!();
            }
            let _ = std::io::stdout().flush();
        } else {
            let every = (p.total_steps / self.lines).max(1);
            if p.step.is_multiple_of(every) || p.step == p.total_steps {
                println!("{} {}", self.label, p.line());
            }
        }
    }

    fn on_eval(&mut self, step: u64, metrics: &[(String, f64)]) {
        let parts: Vec<String> = metrics.iter().map(|(n, v)| format!("{n} {v:.4}")).collect();
        if self.tty {
            println!();
        }
        println!("{} eval at step {step}: {}", self.label, parts.join("  "));
    }
}
