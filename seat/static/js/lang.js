// Language switch shared by every page: remembers the choice in the `lang` cookie and reloads.
for (const button of document.querySelectorAll(".lang-switch")) {
  button.addEventListener("click", () => {
    const lang = button.dataset.lang === "en" ? "en" : "zh";
    document.cookie = `lang=${lang}; path=/; max-age=31536000; samesite=lax`;
    location.reload();
  });
}
