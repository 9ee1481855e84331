//! Image layers against direct loops (the gradient checks prove the VJPs match the
//! forward pass; these prove the forward pass computes the right thing).

use autodiff::layers::{avg_pool2d, global_avg_pool, Conv2d, GroupNorm};
use autodiff::{eval, ConvGeometry, Graph, Mat, Rng};

/// Pixel `(channel, row, column)` of image `b` among images of `h × w`.
fn img(x: &Mat, b: usize, h: usize, w: usize, (ch, hh, ww): (usize, usize, usize)) -> f64 {
    x[(b, ch * h * w + hh * w + ww)]
}

#[test]
fn conv2d_matches_direct_convolution() {
    for geom in [
        ConvGeometry {
            channels: 3,
            height: 5,
            width: 6,
            kernel_h: 3,
            kernel_w: 3,
            stride: 1,
            padding: 1,
        },
        ConvGeometry {
            channels: 2,
            height: 7,
            width: 7,
            kernel_h: 4,
            kernel_w: 4,
            stride: 2,
            padding: 1,
        },
        ConvGeometry {
            channels: 1,
            height: 4,
            width: 3,
            kernel_h: 1,
            kernel_w: 2,
            stride: 1,
            padding: 0,
        },
    ] {
        let (batch, cout) = (3, 4);
        let mut g = Graph::new();
        let x = g.input(batch, geom.image_len());
        let conv = Conv2d::new(&mut g, "c", geom, cout, &mut Rng::new(1)).unwrap();
        let y = conv.forward(&mut g, x).unwrap();
        let xv = Rng::new(2).matrix(batch, geom.image_len(), Rng::normal).unwrap();
        let out = eval(&g, &[y], &[&xv]).unwrap().remove(0);
        let wb = eval(&g, &[conv.weight, conv.bias], &[&xv]).unwrap();
        let (w, bias) = (&wb[0], &wb[1]);
        let (oh, ow) = (geom.out_h(), geom.out_w());
        assert_eq!(out.shape(), (batch, cout * oh * ow));
        for b in 0..batch {
            for co in 0..cout {
                for i in 0..oh {
                    for j in 0..ow {
                        let mut s = bias[(0, co)];
                        for ci in 0..geom.channels {
                            for ki in 0..geom.kernel_h {
                                for kj in 0..geom.kernel_w {
                                    let ih =
                                        (i * geom.stride + ki) as isize - geom.padding as isize;
                                    let iw =
                                        (j * geom.stride + kj) as isize - geom.padding as isize;
                                    if ih < 0
                                        || iw < 0
                                        || ih >= geom.height as isize
                                        || iw >= geom.width as isize
                                    {
                                        continue;
                                    }
                                    let wrow = ci * geom.kernel_h * geom.kernel_w
                                        + ki * geom.kernel_w
                                        + kj;
                                    s += w[(wrow, co)]
                                        * img(
                                            &xv,
                                            b,
                                            geom.height,
                                            geom.width,
                                            (ci, ih as usize, iw as usize),
                                        );
                                }
                            }
                        }
                        let got = out[(b, co * oh * ow + i * ow + j)];
                        assert!(
                            (got - s).abs() < 1e-12,
                            "{geom:?} b{b} c{co} ({i},{j}): {got} vs {s}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn pooling_and_group_norm_match_direct_formulas() {
    let geom = ConvGeometry {
        channels: 2,
        height: 4,
        width: 4,
        kernel_h: 2,
        kernel_w: 2,
        stride: 2,
        padding: 0,
    };
    let mut g = Graph::new();
    let x = g.input(2, geom.image_len());
    let pooled = avg_pool2d(&mut g, x, geom).unwrap();
    let global = global_avg_pool(&mut g, x, 16).unwrap();
    let gn = GroupNorm::new(&mut g, "gn", 1, 2, 16).unwrap();
    let normed = gn.forward(&mut g, x).unwrap();
    let xv = Rng::new(3).matrix(2, geom.image_len(), Rng::normal).unwrap();
    let out = eval(&g, &[pooled, global, normed], &[&xv]).unwrap();
    for b in 0..2 {
        for c in 0..2 {
            for i in 0..2 {
                for j in 0..2 {
                    let mean = [(0, 0), (0, 1), (1, 0), (1, 1)]
                        .iter()
                        .map(|(di, dj)| img(&xv, b, 4, 4, (c, 2 * i + di, 2 * j + dj)))
                        .sum::<f64>()
                        / 4.0;
                    assert!((out[0][(b, c * 4 + i * 2 + j)] - mean).abs() < 1e-14);
                }
            }
            let avg = (0..16).map(|k| xv[(b, c * 16 + k)]).sum::<f64>() / 16.0;
            assert!((out[1][(b, c)] - avg).abs() < 1e-14);
        }
        // One group over both channels: zero mean, unit variance per sample.
        let row: Vec<f64> = (0..32).map(|k| out[2][(b, k)]).collect();
        let m = row.iter().sum::<f64>() / 32.0;
        let v = row.iter().map(|x| (x - m).powi(2)).sum::<f64>() / 32.0;
        assert!(m.abs() < 1e-12 && (v - 1.0).abs() < 1e-4, "{m} {v}");
    }
}

#[test]
fn gaussian_log_density_matches_the_formula() {
    let mut g = Graph::new();
    let x = g.input(2, 3);
    let m = g.input(2, 3);
    let v = g.input(1, 3);
    let lp = g.gaussian_log_density(x, m, v).unwrap();
    let mut rng = Rng::new(9);
    let (xv, mv, vv) = (
        rng.matrix(2, 3, Rng::normal).unwrap(),
        rng.matrix(2, 3, Rng::normal).unwrap(),
        rng.matrix(1, 3, Rng::normal).unwrap(),
    );
    let out = eval(&g, &[lp], &[&xv, &mv, &vv]).unwrap().remove(0);
    for i in 0..2 {
        let want: f64 = (0..3)
            .map(|j| {
                let var = vv[(0, j)].exp();
                -0.5 * ((2.0 * std::f64::consts::PI * var).ln()
                    + (xv[(i, j)] - mv[(i, j)]).powi(2) / var)
            })
            .sum();
        assert!((out[(i, 0)] - want).abs() < 1e-13);
    }
}
