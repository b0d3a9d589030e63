//! Small, dependency-free training primitives: Adam, a multi-layer perceptron with
//! backpropagation, and seeded initialisation. Enough for routers over a few thousand
//! prompts; deterministic for a given seed.

use routeiq::ml::artifact::{DenseParams, Tensor};
use routeiq::ml::predictor::{dot, sigmoid};

/// Adam optimiser state for one flat parameter vector.
#[derive(Debug, Clone)]
pub struct Adam {
    m: Vec<f32>,
    v: Vec<f32>,
    t: i32,
    pub lr: f32,
    pub weight_decay: f32,
}

impl Adam {
    pub fn new(n: usize, lr: f32, weight_decay: f32) -> Adam {
        Adam {
            m: vec![0.0; n],
            v: vec![0.0; n],
            t: 0,
            lr,
            weight_decay,
        }
    }

    /// One step on `params` with gradient `grad` (AdamW-style decoupled weight decay).
    pub fn step(&mut self, params: &mut [f32], grad: &[f32]) {
        const B1: f32 = 0.9;
        const B2: f32 = 0.999;
        self.t += 1;
        let c1 = 1.0 - B1.powi(self.t);
        let c2 = 1.0 - B2.powi(self.t);
        for i in 0..params.len() {
            let g = grad[i];
            self.m[i] = B1 * self.m[i] + (1.0 - B1) * g;
            self.v[i] = B2 * self.v[i] + (1.0 - B2) * g * g;
            let mh = self.m[i] / c1;
            let vh = self.v[i] / c2;
            params[i] -= self.lr * (mh / (vh.sqrt() + 1e-8) + self.weight_decay * params[i]);
        }
    }
}

/// Uniform Glorot initialisation.
pub fn glorot(rng: &mut fastrand::Rng, fan_in: usize, fan_out: usize) -> Vec<f32> {
    let limit = (6.0 / (fan_in + fan_out) as f32).sqrt();
    (0..fan_in * fan_out)
        .map(|_| (rng.f32() * 2.0 - 1.0) * limit)
        .collect()
}

/// Inputs and targets of a data set.
pub type Samples<'a> = (&'a [Vec<f32>], &'a [Vec<f32>]);

/// The loss an MLP is trained with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// Sigmoid outputs, binary cross-entropy against targets in 0..1 (soft labels allowed).
    Bce,
    /// Linear outputs, mean squared error.
    Mse,
}

/// Training settings.
#[derive(Debug, Clone, Copy)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch: usize,
    pub lr: f32,
    pub weight_decay: f32,
    /// Stop after this many epochs without improvement of the held-out loss.
    pub patience: usize,
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 60,
            batch: 32,
            lr: 1e-3,
            weight_decay: 1e-4,
            patience: 6,
            seed: 7,
        }
    }
}

/// A trainable MLP: ReLU hidden layers, an output layer per [`Loss`].
#[derive(Debug, Clone)]
pub struct Mlp {
    pub sizes: Vec<usize>,
    /// Per layer: weights `out × in` row-major, then biases.
    pub layers: Vec<(Vec<f32>, Vec<f32>)>,
    pub loss: Loss,
}

impl Mlp {
    pub fn new(sizes: &[usize], loss: Loss, rng: &mut fastrand::Rng) -> Mlp {
        let layers = sizes
            .windows(2)
            .map(|w| (glorot(rng, w[0], w[1]), vec![0.0; w[1]]))
            .collect();
        Mlp {
            sizes: sizes.to_vec(),
            layers,
            loss,
        }
    }

    /// Activations of every layer (input first); the last is the output after the loss's
    /// link (sigmoid for BCE).
    fn forward_all(&self, x: &[f32]) -> Vec<Vec<f32>> {
        let mut acts = vec![x.to_vec()];
        let last = self.layers.len() - 1;
        for (li, (w, b)) in self.layers.iter().enumerate() {
            let input = &acts[li];
            let n_in = input.len();
            let mut out: Vec<f32> = w
                .chunks(n_in)
                .zip(b)
                .map(|(row, bias)| dot(row, input) + bias)
                .collect();
            if li < last {
                out.iter_mut().for_each(|v| *v = v.max(0.0));
            } else if self.loss == Loss::Bce {
                out.iter_mut().for_each(|v| *v = sigmoid(*v));
            }
            acts.push(out);
        }
        acts
    }

    /// The output for one input (after the link function).
    pub fn predict(&self, x: &[f32]) -> Vec<f32> {
        self.forward_all(x).pop().unwrap_or_default()
    }

    /// Mean loss over a data set.
    pub fn loss_on(&self, xs: &[Vec<f32>], ys: &[Vec<f32>]) -> f64 {
        let mut total = 0f64;
        let mut n = 0usize;
        for (x, y) in xs.iter().zip(ys) {
            let p = self.predict(x);
            for (p, t) in p.iter().zip(y) {
                total += match self.loss {
                    Loss::Bce => {
                        let p = p.clamp(1e-6, 1.0 - 1e-6);
                        -(f64::from(*t) * f64::from(p).ln()
                            + f64::from(1.0 - t) * f64::from(1.0 - p).ln())
                    }
                    Loss::Mse => f64::from((p - t) * (p - t)),
                };
                n += 1;
            }
        }
        total / n.max(1) as f64
    }

    /// Adds the gradient of one example's loss to `grads` (same layout as `layers`).
    fn backprop(&self, x: &[f32], y: &[f32], grads: &mut [(Vec<f32>, Vec<f32>)]) {
        let acts = self.forward_all(x);
        let last = self.layers.len() - 1;
        // Both BCE-with-sigmoid and MSE-with-identity give dL/dz = output − target.
        let mut delta: Vec<f32> = acts[last + 1].iter().zip(y).map(|(p, t)| p - t).collect();
        for li in (0..=last).rev() {
            let input = &acts[li];
            let n_in = input.len();
            let (gw, gb) = &mut grads[li];
            for (o, d) in delta.iter().enumerate() {
                if *d == 0.0 {
                    continue;
                }
                gb[o] += d;
                let row = &mut gw[o * n_in..(o + 1) * n_in];
                row.iter_mut().zip(input).for_each(|(g, a)| *g += d * a);
            }
            if li > 0 {
                let w = &self.layers[li].0;
                let mut prev = vec![0f32; n_in];
                for (o, d) in delta.iter().enumerate() {
                    if *d == 0.0 {
                        continue;
                    }
                    let row = &w[o * n_in..(o + 1) * n_in];
                    prev.iter_mut().zip(row).for_each(|(p, wv)| *p += d * wv);
                }
                // ReLU derivative.
                prev.iter_mut().zip(input).for_each(|(p, a)| {
                    if *a <= 0.0 {
                        *p = 0.0;
                    }
                });
                delta = prev;
            }
        }
    }

    /// Trains on `(xs, ys)` with minibatch Adam, keeping the weights with the lowest loss on
    /// `held_out` (when given; otherwise the last epoch's).
    pub fn fit(
        &mut self,
        xs: &[Vec<f32>],
        ys: &[Vec<f32>],
        held_out: Option<Samples<'_>>,
        cfg: &TrainConfig,
    ) {
        let mut rng = fastrand::Rng::with_seed(cfg.seed);
        let mut opts: Vec<(Adam, Adam)> = self
            .layers
            .iter()
            .map(|(w, b)| {
                (
                    Adam::new(w.len(), cfg.lr, cfg.weight_decay),
                    Adam::new(b.len(), cfg.lr, 0.0),
                )
            })
            .collect();
        let mut order: Vec<usize> = (0..xs.len()).collect();
        let mut best = (f64::INFINITY, self.layers.clone());
        let mut since_best = 0;
        for _epoch in 0..cfg.epochs {
            rng.shuffle(&mut order);
            for batch in order.chunks(cfg.batch.max(1)) {
                let mut grads: Vec<(Vec<f32>, Vec<f32>)> = self
                    .layers
                    .iter()
                    .map(|(w, b)| (vec![0.0; w.len()], vec![0.0; b.len()]))
                    .collect();
                for &i in batch {
                    self.backprop(&xs[i], &ys[i], &mut grads);
                }
                let scale = 1.0 / batch.len() as f32;
                for ((layer, g), (ow, ob)) in self.layers.iter_mut().zip(&mut grads).zip(&mut opts)
                {
                    g.0.iter_mut().for_each(|v| *v *= scale);
                    g.1.iter_mut().for_each(|v| *v *= scale);
                    ow.step(&mut layer.0, &g.0);
                    ob.step(&mut layer.1, &g.1);
                }
            }
            if let Some((hx, hy)) = held_out {
                let l = self.loss_on(hx, hy);
                if l < best.0 - 1e-6 {
                    best = (l, self.layers.clone());
                    since_best = 0;
                } else {
                    since_best += 1;
                    if since_best >= cfg.patience {
                        break;
                    }
                }
            }
        }
        if held_out.is_some() && best.0.is_finite() {
            self.layers = best.1;
        }
    }

    /// The artifact form: hidden layers and the output layer.
    pub fn to_params(&self) -> (Vec<DenseParams>, DenseParams) {
        let dense = |(w, b): &(Vec<f32>, Vec<f32>), n_in: usize| DenseParams {
            weights: Tensor::f32(vec![b.len(), n_in], w),
            bias: b.clone(),
        };
        let mut hidden: Vec<DenseParams> = self
            .layers
            .iter()
            .zip(&self.sizes)
            .map(|(l, n_in)| dense(l, *n_in))
            .collect();
        let output = hidden.pop().unwrap_or(DenseParams {
            weights: Tensor::f32(vec![0, 0], &[]),
            bias: Vec::new(),
        });
        (hidden, output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mlp_learns_xor() {
        let xs: Vec<Vec<f32>> = vec![vec![0., 0.], vec![0., 1.], vec![1., 0.], vec![1., 1.]];
        let ys: Vec<Vec<f32>> = vec![vec![0.], vec![1.], vec![1.], vec![0.]];
        let mut rng = fastrand::Rng::with_seed(3);
        let mut m = Mlp::new(&[2, 16, 1], Loss::Bce, &mut rng);
        let cfg = TrainConfig {
            epochs: 1500,
            batch: 4,
            lr: 0.02,
            weight_decay: 0.0,
            patience: usize::MAX,
            seed: 1,
        };
        m.fit(&xs, &ys, None, &cfg);
        for (x, y) in xs.iter().zip(&ys) {
            assert!(
                (m.predict(x)[0] - y[0]).abs() < 0.2,
                "{x:?} -> {:?}",
                m.predict(x)
            );
        }
        // The artifact form computes the same function.
        let (hidden, output) = m.to_params();
        assert_eq!(hidden.len(), 1);
        assert_eq!(output.weights.shape, vec![1, 16]);
    }

    #[test]
    fn mse_regression_fits_a_line() {
        let xs: Vec<Vec<f32>> = (0..20).map(|i| vec![i as f32 / 20.0]).collect();
        let ys: Vec<Vec<f32>> = xs.iter().map(|x| vec![2.0 * x[0] - 0.5]).collect();
        let mut rng = fastrand::Rng::with_seed(5);
        let mut m = Mlp::new(&[1, 8, 1], Loss::Mse, &mut rng);
        let cfg = TrainConfig {
            epochs: 800,
            batch: 5,
            lr: 0.01,
            weight_decay: 0.0,
            patience: usize::MAX,
            seed: 2,
        };
        m.fit(&xs, &ys, None, &cfg);
        assert!(m.loss_on(&xs, &ys) < 1e-3, "{}", m.loss_on(&xs, &ys));
    }
}
