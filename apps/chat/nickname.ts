/**
 * The nickname dialog: asked on the first visit (no way around it) and from the "Change"
 * button (cancellable). Resolves with the new name, or undefined when cancelled.
 */
import { byId } from "../shared/dom.js";
import { nickname } from "./model.js";

export function askNickname(current: string | undefined): Promise<string | undefined> {
  const dialog = byId<HTMLDialogElement>("nickname-dialog");
  const form = byId<HTMLFormElement>("nickname-form");
  const input = byId<HTMLInputElement>("nickname-input");
  const error = byId("nickname-error");
  const cancel = byId<HTMLButtonElement>("nickname-cancel");
  const title = byId("nickname-title");

  title.textContent = current === undefined ? "Choose a nickname" : "Change your nickname";
  cancel.hidden = current === undefined;
  input.value = current ?? "";
  error.textContent = "";
  input.removeAttribute("aria-invalid");

  return new Promise((resolve) => {
    const finish = (name: string | undefined): void => {
      form.removeEventListener("submit", onSubmit);
      cancel.removeEventListener("click", onCancel);
      dialog.removeEventListener("cancel", onEscape);
      if (dialog.open) dialog.close();
      resolve(name);
    };
    const onSubmit = (event: SubmitEvent): void => {
      event.preventDefault();
      const name = nickname(input.value);
      if (name === undefined) {
        error.textContent = "A nickname has 1 to 32 characters.";
        input.setAttribute("aria-invalid", "true");
        input.focus();
        return;
      }
      finish(name);
    };
    const onCancel = (): void => finish(undefined);
    const onEscape = (event: Event): void => {
      event.preventDefault(); // Escape: only when there is a name to go back to
      if (current !== undefined) finish(undefined);
    };
    form.addEventListener("submit", onSubmit);
    cancel.addEventListener("click", onCancel);
    dialog.addEventListener("cancel", onEscape);
    dialog.showModal();
    input.select();
  });
}
