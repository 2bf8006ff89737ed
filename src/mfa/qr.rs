//! The enrolment page's QR code: an inline SVG drawn here, so the secret never leaves the
//! server for an image service, and the page needs no script and no image request.

use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

/// The `otpauth://` URI as an `<svg>` element (trusted markup: only the renderer's output).
pub fn svg(data: &str) -> Result<String, String> {
    let code = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M)
        .map_err(|e| e.to_string())?;
    let image = code
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .build();
    // The element only: an XML declaration has no place inside an HTML page.
    match image.find("<svg") {
        Some(start) => Ok(image[start..].to_string()),
        None => Err("the QR renderer produced no <svg>".to_string()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_otpauth_uri_becomes_an_svg_element() {
        let svg = super::svg("otpauth://totp/example.com:ada?secret=JBSWY3DPEHPK3PXP").unwrap();
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{svg}"
        );
    }
}
