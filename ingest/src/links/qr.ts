import QRCode from "qrcode";

/**
 * QR codes of a short link. They encode the short URL with `?qr=1`, which the worker strips
 * and records as a QR click.
 */
export const qrTarget = (shortUrl: string) => `${shortUrl}?qr=1`;

export function qrSvg(text: string, size: number): Promise<string> {
  return QRCode.toString(text, { type: "svg", width: size, margin: 2, errorCorrectionLevel: "M" });
}

export function qrPng(text: string, size: number): Promise<Buffer> {
  return QRCode.toBuffer(text, { type: "png", width: size, margin: 2, errorCorrectionLevel: "M" });
}
