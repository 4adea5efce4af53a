// Small behaviours shared by every page (no inline handlers: the CSP allows only our files).
"use strict";
document.querySelectorAll("select[data-autosubmit]").forEach((select) => {
  select.addEventListener("change", () => select.form && select.form.requestSubmit());
});
