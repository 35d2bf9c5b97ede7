-- The visitor asked not to be tracked (DNT / Sec-GPC) and RESPECT_DNT dropped the personal fields.
ALTER TABLE clicks ADD COLUMN dnt boolean NOT NULL DEFAULT false;
