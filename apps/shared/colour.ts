/**
 * User colours. The server gives each user a colour (`info.colour`, a CSS hsl() string); it is
 * only used after checking it is exactly that shape, so nothing but a colour reaches the CSS.
 */

const HSL = /^hsl\(\d{1,3}(?:\.\d+)? \d{1,3}(?:\.\d+)?% \d{1,3}(?:\.\d+)?%\)$/;

/** The same stable colour for a name as the server computes (src/cli/serve.ts colourOf). */
export function colourOf(name: string): string {
  let h = 0;
  for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
  return `hsl(${h % 360} 70% 45%)`;
}

/** `value` when it is a plain hsl() colour, else the colour computed from `name`. */
export function safeColour(value: unknown, name: string): string {
  return typeof value === "string" && HSL.test(value) ? value : colourOf(name);
}

/** Set the `--user-colour` CSS variable of an element (CSSOM: allowed by the page's CSP). */
export function paintUser(el: HTMLElement, colour: string): void {
  el.style.setProperty("--user-colour", colour);
}
