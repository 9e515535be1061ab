//! Photo bytes to model input: decode (JPEG, PNG), EXIF orientation, centre crop, resize,
//! `[0, 1]` RGB in NCHW order.
//!
//! The scaling `(x*255-127)/128` that EfficientNet-Lite expects is the first two nodes of
//! the converted graph (`ml/tools/convert.py`), so the input here stays in `[0, 1]`.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage, imageops::FilterType};
use tract_onnx::prelude::Tensor;

/// Side of the square model input.
pub const INPUT_SIZE: u32 = 224;

/// Why a photo could not be turned into model input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes are not a JPEG or PNG this build can read.
    #[error("not a readable JPEG or PNG image: {0}")]
    Image(#[from] image::ImageError),
    /// Reading the bytes failed.
    #[error("reading image: {0}")]
    Io(#[from] std::io::Error),
    /// The image has no pixels.
    #[error("image is empty")]
    Empty,
    /// The tensor could not be built.
    #[error("building the input tensor: {0}")]
    Tensor(String),
}

/// Decodes JPEG or PNG bytes into RGB, rotated/flipped as its EXIF orientation says.
pub fn decode(bytes: &[u8]) -> Result<RgbImage, DecodeError> {
    let mut decoder = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()?
        .into_decoder()?;
    let orientation = decoder.orientation()?;
    let mut image = DynamicImage::from_decoder(decoder)?;
    image.apply_orientation(orientation);
    if image.width() == 0 || image.height() == 0 {
        return Err(DecodeError::Empty);
    }
    Ok(image.into_rgb8())
}

/// Centre-crops to a square, resizes to [`INPUT_SIZE`] and lays the pixels out as a
/// `[1, 3, 224, 224]` f32 tensor in `[0, 1]`.
pub fn to_input(image: &RgbImage) -> Result<Tensor, DecodeError> {
    let (w, h) = image.dimensions();
    let side = w.min(h);
    if side == 0 {
        return Err(DecodeError::Empty);
    }
    let cropped =
        image::imageops::crop_imm(image, (w - side) / 2, (h - side) / 2, side, side).to_image();
    let resized = image::imageops::resize(&cropped, INPUT_SIZE, INPUT_SIZE, FilterType::Triangle);
    let n = (INPUT_SIZE * INPUT_SIZE) as usize;
    let mut data = vec![0f32; 3 * n];
    for (i, p) in resized.pixels().enumerate() {
        for c in 0..3 {
            data[c * n + i] = f32::from(p[c]) / 255.0;
        }
    }
    let side = INPUT_SIZE as usize;
    Tensor::from_shape(&[1, 3, side, side], &data).map_err(|e| DecodeError::Tensor(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIENTED: &[u8] = include_bytes!("../tests/fixtures/orientation6.jpg");
    const PLAIN: &[u8] = include_bytes!("../tests/fixtures/plain.png");

    fn is_red(p: &image::Rgb<u8>) -> bool {
        p[0] > 200 && p[2] < 60
    }

    #[test]
    fn png_decodes_as_stored() -> Result<(), DecodeError> {
        let img = decode(PLAIN)?;
        assert_eq!(img.dimensions(), (48, 32));
        assert!(is_red(img.get_pixel(5, 16)));
        assert!(!is_red(img.get_pixel(42, 16)));
        Ok(())
    }

    #[test]
    fn jpeg_exif_orientation_is_applied() -> Result<(), DecodeError> {
        // Stored 48x32 with the red half on the left, EXIF orientation 6 (rotate 90° CW):
        // displayed 32x48 with the red half on top.
        let img = decode(ORIENTED)?;
        assert_eq!(img.dimensions(), (32, 48));
        assert!(is_red(img.get_pixel(16, 5)));
        assert!(!is_red(img.get_pixel(16, 42)));
        Ok(())
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(decode(b"not an image at all").is_err());
        assert!(decode(&[]).is_err());
    }

    #[test]
    fn input_is_centre_cropped_nchw_unit_range() -> Result<(), DecodeError> {
        // 300x100: left third red, middle third green, right third blue. The centre
        // crop keeps only the green third.
        let img = RgbImage::from_fn(300, 100, |x, _| match x / 100 {
            0 => image::Rgb([255, 0, 0]),
            1 => image::Rgb([0, 255, 0]),
            _ => image::Rgb([0, 0, 255]),
        });
        let t = to_input(&img)?;
        assert_eq!(t.shape(), &[1, 3, 224, 224]);
        let v = t
            .to_plain_array_view::<f32>()
            .map_err(|e| DecodeError::Tensor(e.to_string()))?;
        let n = 224 * 224;
        let s = v.as_slice().ok_or(DecodeError::Empty)?;
        assert!(
            s[..n].iter().all(|&x| x < 0.01),
            "no red left after the crop"
        );
        assert!(s[n..2 * n].iter().all(|&x| x > 0.99), "all green");
        assert!(s[2 * n..].iter().all(|&x| x < 0.01), "no blue");
        Ok(())
    }
}
