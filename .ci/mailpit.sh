# Sourced by .ci/run: installs mailpit v1.33.1 and starts it on 127.0.0.1 with
# STARTTLS (a certificate made here) and AUTH, for the end-to-end send test.
# Exports MAILPIT_SMTP, MAILPIT_API, MAILPIT_CA, MAILPIT_USER, MAILPIT_PASSWORD.
if ! command -v mailpit >/dev/null; then
  go install github.com/axllent/mailpit@v1.33.1
fi
MAILPIT_DIR="$(mktemp -d)"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
  -keyout "$MAILPIT_DIR/key.pem" -out "$MAILPIT_DIR/cert.pem" 2>/dev/null
MAILPIT_USER=mailrun
MAILPIT_PASSWORD="$(openssl rand -hex 12)"
echo "$MAILPIT_USER:$MAILPIT_PASSWORD" > "$MAILPIT_DIR/auth"
mailpit --smtp 127.0.0.1:31025 --listen 127.0.0.1:31825 \
  --smtp-tls-cert "$MAILPIT_DIR/cert.pem" --smtp-tls-key "$MAILPIT_DIR/key.pem" \
  --smtp-auth-file "$MAILPIT_DIR/auth" --smtp-disable-rdns --disable-version-check \
  --database "$MAILPIT_DIR/mailpit.db" >"$MAILPIT_DIR/log" 2>&1 &
MAILPIT_PID=$!
trap 'kill $MAILPIT_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -fsS http://127.0.0.1:31825/api/v1/info >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS http://127.0.0.1:31825/api/v1/info >/dev/null || { cat "$MAILPIT_DIR/log"; exit 1; }
export MAILPIT_SMTP=127.0.0.1:31025 MAILPIT_API=http://127.0.0.1:31825
export MAILPIT_CA="$MAILPIT_DIR/cert.pem" MAILPIT_USER MAILPIT_PASSWORD
