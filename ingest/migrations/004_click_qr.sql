-- A click that came through the link's QR code (the worker sees ?qr=1).
ALTER TABLE clicks ADD COLUMN qr boolean NOT NULL DEFAULT false;
