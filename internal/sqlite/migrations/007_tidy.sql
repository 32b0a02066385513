-- A destination URL's password is kept sealed (credential.Keyring,
-- base64 of the ciphertext) in destination_sealed, and destination_url then
-- holds the URL with the password redacted. '' when the URL has no
-- password. Rows written before are sealed by the first process that
-- opens the database with the key (sqlstore.Connections.SealDestinations).
ALTER TABLE connections ADD COLUMN destination_sealed TEXT NOT NULL DEFAULT ''
