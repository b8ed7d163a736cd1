// Kiosk bootstrap: the booth token arrives once in the URL fragment (#token=...), is kept in
// localStorage, and authenticates every API call as a Bearer header. The fragment is never sent
// to the server, so the token does not land in access logs.
const TOKEN_KEY = "cloudseat.boothToken";

function takeTokenFromFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get("token");
  if (token) {
    localStorage.setItem(TOKEN_KEY, token);
    history.replaceState(null, "", location.pathname + location.search);
  }
  return localStorage.getItem(TOKEN_KEY);
}

async function main() {
  const token = takeTokenFromFragment();
  if (!token) {
    document.getElementById("unprovisioned").hidden = false;
    return;
  }
  const response = await fetch("/api/me", { headers: { Authorization: `Bearer ${token}` } });
  if (!response.ok) {
    document.getElementById("unprovisioned").hidden = false;
    return;
  }
  const me = await response.json();
  document.getElementById("booth-name").textContent = `· ${me.booth_name}`;
  document.body.dataset.ready = "true";
}

main();
