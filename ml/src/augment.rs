//! Deterministic photo augmentations: crop, rotation, brightness, blur, mirror.
//!
//! They stand in for "another photo of the same product" in the few-shot evaluation and
//! the benchmark, and let enrolment from one photo add a few varied views.

use image::{Rgb, RgbImage, imageops};

/// One augmentation: applied in the order crop, rotate, mirror, brightness, blur.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Augment {
    /// Fraction of each side kept by the crop (1.0 = no crop), in `(0, 1]`.
    pub crop: f32,
    /// Where the crop window sits, each in `[0, 1]` (0.5, 0.5 = centred).
    pub crop_at: (f32, f32),
    /// Rotation in degrees (counter-clockwise), borders filled by the nearest edge pixel.
    pub rotate_deg: f32,
    /// Mirror left-right.
    pub mirror: bool,
    /// Brightness multiplier (1.0 = unchanged).
    pub brightness: f32,
    /// Gaussian blur sigma in pixels (0 = none).
    pub blur: f32,
}

impl Augment {
    /// The identity.
    pub const NONE: Augment = Augment {
        crop: 1.0,
        crop_at: (0.5, 0.5),
        rotate_deg: 0.0,
        mirror: false,
        brightness: 1.0,
        blur: 0.0,
    };

    /// A pseudo-random augmentation from `seed` (same seed, same augmentation): crop
    /// 65-95 %, rotation ±20°, brightness 0.6-1.4, blur sigma 0-2, mirrored half the time.
    pub fn random(seed: u64) -> Augment {
        let mut s = Lcg(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03);
        Augment {
            crop: 0.65 + 0.30 * s.next(),
            crop_at: (s.next(), s.next()),
            rotate_deg: -20.0 + 40.0 * s.next(),
            mirror: s.next() < 0.5,
            brightness: 0.6 + 0.8 * s.next(),
            blur: 2.0 * s.next(),
        }
    }

    /// Applies the augmentation.
    pub fn apply(&self, image: &RgbImage) -> RgbImage {
        let (w, h) = image.dimensions();
        let cw = ((w as f32 * self.crop.clamp(0.05, 1.0)) as u32).clamp(1, w.max(1));
        let ch = ((h as f32 * self.crop.clamp(0.05, 1.0)) as u32).clamp(1, h.max(1));
        let x = ((w - cw) as f32 * self.crop_at.0.clamp(0.0, 1.0)) as u32;
        let y = ((h - ch) as f32 * self.crop_at.1.clamp(0.0, 1.0)) as u32;
        let mut out = imageops::crop_imm(image, x, y, cw, ch).to_image();
        if self.rotate_deg != 0.0 {
            out = rotate(&out, self.rotate_deg);
        }
        if self.mirror {
            imageops::flip_horizontal_in_place(&mut out);
        }
        if self.brightness != 1.0 {
            for p in out.pixels_mut() {
                for c in p.0.iter_mut() {
                    *c = (f32::from(*c) * self.brightness).round().clamp(0.0, 255.0) as u8;
                }
            }
        }
        if self.blur > 0.0 {
            out = imageops::blur(&out, self.blur);
        }
        out
    }
}

/// Rotates about the centre with bilinear sampling, keeping the size.
fn rotate(image: &RgbImage, degrees: f32) -> RgbImage {
    let (w, h) = image.dimensions();
    let (sin, cos) = degrees.to_radians().sin_cos();
    let (cx, cy) = ((w as f32 - 1.0) / 2.0, (h as f32 - 1.0) / 2.0);
    let sample = |x: f32, y: f32| -> Rgb<u8> {
        let x = x.clamp(0.0, w as f32 - 1.0);
        let y = y.clamp(0.0, h as f32 - 1.0);
        let (x0, y0) = (x.floor() as u32, y.floor() as u32);
        let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
        let (fx, fy) = (x - x0 as f32, y - y0 as f32);
        let px = |xx, yy| image.get_pixel(xx, yy).0.map(f32::from);
        let (a, b, c, d) = (px(x0, y0), px(x1, y0), px(x0, y1), px(x1, y1));
        let mut o = [0u8; 3];
        for i in 0..3 {
            let top = a[i] * (1.0 - fx) + b[i] * fx;
            let bottom = c[i] * (1.0 - fx) + d[i] * fx;
            o[i] = (top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8;
        }
        Rgb(o)
    };
    RgbImage::from_fn(w, h, |x, y| {
        let (dx, dy) = (x as f32 - cx, y as f32 - cy);
        // Inverse mapping: where in the source does this output pixel come from.
        sample(cx + dx * cos - dy * sin, cy + dx * sin + dy * cos)
    })
}

/// A tiny deterministic generator (no dependency, stable across platforms).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 40) as f32) / ((1u64 << 24) as f32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient() -> RgbImage {
        RgbImage::from_fn(64, 48, |x, y| Rgb([(x * 4) as u8, (y * 5) as u8, 128]))
    }

    #[test]
    fn identity_keeps_the_image() {
        let img = gradient();
        assert_eq!(Augment::NONE.apply(&img), img);
    }

    #[test]
    fn random_is_deterministic_and_in_range() {
        for seed in 0..50 {
            let a = Augment::random(seed);
            assert_eq!(a, Augment::random(seed));
            assert!((0.65..=0.95).contains(&a.crop));
            assert!((-20.0..=20.0).contains(&a.rotate_deg));
            assert!((0.6..=1.4).contains(&a.brightness));
        }
        assert_ne!(Augment::random(1), Augment::random(2));
    }

    #[test]
    fn crop_brightness_and_rotation_do_what_they_say() {
        let img = gradient();
        let half = Augment {
            crop: 0.5,
            crop_at: (0.0, 0.0),
            ..Augment::NONE
        };
        let out = half.apply(&img);
        assert_eq!(out.dimensions(), (32, 24));
        assert_eq!(out.get_pixel(3, 2), img.get_pixel(3, 2));
        let dark = Augment {
            brightness: 0.5,
            ..Augment::NONE
        };
        assert_eq!(dark.apply(&img).get_pixel(10, 10)[2], 64);
        // A 180° rotation maps the top-left pixel to the bottom-right.
        let turned = rotate(&img, 180.0);
        let (a, b) = (img.get_pixel(0, 0), turned.get_pixel(63, 47));
        for i in 0..3 {
            assert!(a[i].abs_diff(b[i]) <= 1);
        }
    }
}
