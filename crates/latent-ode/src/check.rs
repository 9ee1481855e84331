//! Gradient checks: the negative ELBO's gradient against central finite differences, for
//! `cargo xtask gradcheck` and the tests.

use crate::data::Example;
use crate::{Error, LatentOde};

/// The largest relative error `|fd − g| / (10⁻³ + max(|fd|, |g|))` over every parameter
/// between the model's gradient of `example`'s loss (noise `eps`, weight `beta`) and
/// central differences with step `h`. The model's parameters are restored.
pub fn elbo_gradient_error(
    model: &mut LatentOde,
    example: &Example,
    eps: &[f64],
    beta: f64,
    h: f64,
) -> Result<f64, Error> {
    if !(h.is_finite() && h > 0.0) {
        return Err(Error::InvalidArgument {
            what: "step",
            detail: format!("{h} must be positive"),
        });
    }
    let n = model.num_params();
    let mut g = vec![0.0; n];
    model.example_loss(example, eps, beta, Some(&mut g))?;
    let p0 = model.params();
    let mut worst: f64 = 0.0;
    let mut p = p0.clone();
    for i in 0..n {
        p[i] = p0[i] + h;
        model.set_params(&p)?;
        let up = model.example_loss(example, eps, beta, None);
        p[i] = p0[i] - h;
        model.set_params(&p)?;
        let dn = model.example_loss(example, eps, beta, None);
        p[i] = p0[i];
        let (up, dn) = match (up, dn) {
            (Ok(u), Ok(d)) => (u.loss, d.loss),
            (Err(e), _) | (_, Err(e)) => {
                model.set_params(&p0)?;
                return Err(e);
            }
        };
        let fd = (up - dn) / (2.0 * h);
        worst = worst.max((fd - g[i]).abs() / (1e-3 + fd.abs().max(g[i].abs())));
    }
    model.set_params(&p0)?;
    Ok(worst)
}
