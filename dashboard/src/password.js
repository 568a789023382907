// The password rules the server applies (CONTRACT 4), checked on the form while the user types.

export const PASSWORD_MIN = 5; // as the API (upstream's limit)
export const PASSWORD_MAX = 128; // as the API (upstream's limit)
export const DEFAULT_PASSWORD = "CHANGE_ME_ON_FIRST_LOGIN"; // the first start's password, refused as a new one

/** Each rule with whether `password` (and its repetition `confirm`) meets it, in the order shown on the form. */
export function passwordRules(password, confirm) {
  return [
    { key: "length", text: `${PASSWORD_MIN} to ${PASSWORD_MAX} characters`, ok: password.length >= PASSWORD_MIN && password.length <= PASSWORD_MAX },
    { key: "default", text: "not the first-start password", ok: password !== "" && password !== DEFAULT_PASSWORD },
    { key: "match", text: "both entries match", ok: password !== "" && password === confirm },
  ];
}

/** The first rule `password` breaks, as a sentence for the form's error line, or "" when it meets them all. */
export function passwordProblem(password, confirm) {
  if (password.length < PASSWORD_MIN || password.length > PASSWORD_MAX) {
    return `The new password needs ${PASSWORD_MIN} to ${PASSWORD_MAX} characters (it has ${password.length}).`;
  }
  if (password === DEFAULT_PASSWORD) return "Choose a password other than the first-start one.";
  if (password !== confirm) return "The two new passwords differ.";
  return "";
}
