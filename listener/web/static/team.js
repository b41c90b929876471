// The team view: a "select all" box per agent's list of open mentions. Without script
// the boxes still work one by one.
"use strict";
document.querySelectorAll("input.select-all").forEach((all) => {
  const form = all.closest("form");
  const boxes = () => form.querySelectorAll('input[name="mention"]');
  all.hidden = false;
  all.addEventListener("change", () => {
    boxes().forEach((box) => { box.checked = all.checked; });
  });
  form.addEventListener("change", (event) => {
    if (event.target === all) return;
    const list = [...boxes()];
    all.checked = list.length > 0 && list.every((box) => box.checked);
    all.indeterminate = !all.checked && list.some((box) => box.checked);
  });
});
