// Page A: sign in with a one-time code sent by PM.
import { api, busy, describeError, formatWait, h, initShell, labelled, main, setStatus } from "./common.js";

const me = await initShell();
const root = main();
const next = new URLSearchParams(location.search).get("next");
const target = next && next.startsWith("/") && !next.startsWith("//") ? next : "/";

if (me) {
  root.append(h("p", {}, `You are signed in as ${me.username} (${me.role}). `, h("a", { href: target }, "Continue")));
}

const username = h("input", { name: "username", autocomplete: "username", required: true, maxlength: "20",
  pattern: "[A-Za-z0-9_\\-]{1,20}", autocapitalize: "none", spellcheck: "false" });
const sendButton = h("button", { type: "submit" }, "Send code");
const requestStatus = h("p", { class: "status", role: "status" });
const requestForm = h("form", { class: "card", "aria-label": "Request a code" },
  labelled("CyTube username", username, "The code arrives as a private message in the channel."),
  sendButton, requestStatus);

const code = h("input", { name: "otp", autocomplete: "one-time-code", required: true, maxlength: "16",
  autocapitalize: "characters", spellcheck: "false" });
const countdown = h("p", { class: "countdown", "aria-live": "off", "data-testid": "countdown" });
const signInButton = h("button", { type: "submit" }, "Sign in");
const verifyStatus = h("div", { class: "status", role: "status" });
const verifyForm = h("form", { class: "card", "aria-label": "Enter the code", hidden: true },
  labelled("Code from the PM", code), countdown, signInButton, verifyStatus);

root.append(requestForm, verifyForm);
username.focus();

let timer = null;
function startCountdown(seconds) {
  const ends = Date.now() + seconds * 1000;
  clearInterval(timer);
  const tick = () => {
    const left = Math.max(0, Math.round((ends - Date.now()) / 1000));
    countdown.textContent = left > 0 ? `The code expires in ${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}.`
      : "The code has expired. Request a new one.";
    countdown.classList.toggle("expired", left === 0);
    if (left === 0) clearInterval(timer);
  };
  tick();
  timer = setInterval(tick, 1000);
}

function backToRequest(message) {
  clearInterval(timer);
  verifyForm.hidden = true;
  requestForm.hidden = false;
  setStatus(requestStatus, message ? "error" : "", message || "");
  username.focus();
}

requestForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  setStatus(requestStatus, "busy", "Sending the code…");
  try {
    const answer = (await busy(sendButton, () => api("POST", "/api/v1/auth/otp/request",
      { username: username.value.trim() }))).data;
    setStatus(requestStatus, "ok", "");
    requestForm.hidden = true;
    verifyForm.hidden = false;
    verifyStatus.replaceChildren();
    setStatus(verifyStatus, "ok", `A code was sent to ${username.value.trim()} by PM.`);
    startCountdown(answer.expires_in_seconds);
    code.value = "";
    code.focus();
  } catch (exc) {
    let text = describeError(exc);
    if (exc.code === "user_not_in_channel") text = `${exc.message} Join the channel first, then ask again.`;
    if (exc.code === "robot_unavailable" || exc.code === "nats_unavailable") {
      text = `${exc.message} The channel bot cannot send the code right now; try again in a minute.`;
    }
    setStatus(requestStatus, "error", text);
  }
});

verifyForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  setStatus(verifyStatus, "busy", "Checking the code…");
  try {
    const answer = (await busy(signInButton, () => api("POST", "/api/v1/auth/otp/verify",
      { username: username.value.trim(), otp: code.value.trim() }))).data;
    if (answer.status === "ok") {
      clearInterval(timer);
      setStatus(verifyStatus, "ok", `Signed in as ${answer.role}.`);
      location.href = target;
    } else if (answer.status === "invalid") {
      const n = answer.attempts_remaining;
      setStatus(verifyStatus, "error", `That code is wrong. ${n} attempt${n === 1 ? "" : "s"} left.`);
      code.select();
    } else if (answer.status === "locked") {
      clearInterval(timer);
      const wait = answer.retry_after_seconds;
      const when = new Date(Date.now() + wait * 1000).toLocaleTimeString();
      setStatus(verifyStatus, "error", wait > 0
        ? `Too many wrong codes: signing in as this user is locked for ${formatWait(wait)} (until ${when}).`
        : "This code has expired or was used up. Request a new one.");
      verifyStatus.append(" ", h("button", { type: "button", onclick: () => backToRequest() }, "Request a new code"));
    } else if (answer.status === "unrequested") {
      showUnrequested(answer);
    }
  } catch (exc) {
    setStatus(verifyStatus, "error", describeError(exc));
  }
});

function showUnrequested(answer) {
  clearInterval(timer);
  const hours = answer.default_block_hours;
  setStatus(verifyStatus, "error", "No code was requested for this user. Did you request this code?");
  const outcome = h("p", { class: "status", role: "status" });
  const back = h("button", { type: "button", onclick: () => backToRequest() }, "Request a new code");
  if (answer.can_block_ip) {
    const block = h("button", { type: "button", class: "danger" }, `Block this IP for ${hours} hours`);
    block.addEventListener("click", async () => {
      try {
        const done = (await busy(block, () => api("POST", "/api/v1/auth/ipblock", { action: "block", hours }))).data;
        setStatus(outcome, "ok", `This address is blocked until ${new Date(done.blocked_until).toLocaleString()}.`);
        block.remove();
      } catch (exc) {
        setStatus(outcome, "error", describeError(exc));
      }
    });
    verifyStatus.append(h("div", { class: "actions" }, block, back), outcome);
  } else {
    verifyStatus.append(h("div", { class: "actions" }, back));
  }
}
