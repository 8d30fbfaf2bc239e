#!/usr/bin/env bash
# The README's two commands' first half on Node 22 LTS (the oldest Node the project supports):
# a fresh copy of this checkout, `npm ci` (installs and builds dist/), `npm start` on free ports,
# the README's happy-path order answered CONFIRMED, then SIGTERM and a clean exit.
# Usage: .ci/node22-smoke.sh <node22 bin dir>. Exit 0 when all of that holds.
set -uo pipefail
bin=$1
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
pid=""
cleanup() {
  [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
export PATH="$bin:$PATH"
echo "node22 smoke: node $(node -v), npm $(npm -v)"
git -C "$root" archive HEAD | tar -x -C "$work" || exit 1
cd "$work" || exit 1
npm ci --no-audit --no-fund --loglevel=error >npm-ci.log 2>&1 || { cat npm-ci.log; echo "node22 smoke: npm ci failed"; exit 1; }
port() { node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }
http=$(port); admin=$(port); order=$(port); inventory=$(port); payment=$(port)
DATA_DIR="$work/data" HTTP_ADDR="127.0.0.1:$http" ADMIN_ADDR="127.0.0.1:$admin" ORDER_SERVICE_ADDR="127.0.0.1:$order" \
  INVENTORY_SERVICE_ADDR="127.0.0.1:$inventory" PAYMENT_SERVICE_ADDR="127.0.0.1:$payment" METRICS_ADDR=off \
  REDIS_KEY_PREFIX="node22-smoke-$$" LOG_LEVEL=warn node bin/sagas.js start >start.log 2>&1 &
pid=$!
for _ in $(seq 150); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$http/readyz")" = 200 ] && break
  kill -0 "$pid" 2>/dev/null || { cat start.log; echo "node22 smoke: npm start exited"; exit 1; }
  sleep 0.2
done
answer=$(curl -s -X POST "http://127.0.0.1:$http/orders" -H 'Content-Type: application/json' -H 'Prefer: wait=10' \
  -d '{"customer_id":"cust_123","items":[{"product_id":"prod_1","quantity":2,"price":50.00},{"product_id":"prod_2","quantity":1,"price":30.00}]}')
echo "node22 smoke: $answer"
echo "$answer" | grep -q '"status":"CONFIRMED"' || { tail -n 30 start.log; echo "node22 smoke: the order was not CONFIRMED"; exit 1; }
kill -TERM "$pid"
wait "$pid"
rc=$?
pid=""
[ "$rc" -eq 0 ] || { tail -n 30 start.log; echo "node22 smoke: sagas start exited $rc on SIGTERM"; exit 1; }
echo "node22 smoke: passed"
