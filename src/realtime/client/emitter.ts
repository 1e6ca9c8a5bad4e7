/**
 * A tiny typed event emitter for the realtime client (browser and Node: no Node-only imports).
 *
 * Each event carries one argument, typed by the event map `M`:
 *
 *   const e = new Emitter<{ state: { state: string }; error: Error }>();
 *   const off = e.on("state", ({ state }) => …);
 *   e.emit("state", { state: "connected" });
 *   off();
 *
 * A listener that throws does not stop the other listeners of that emit() nor reach the code
 * that called emit(). The exception is reported like the platform reports an exception thrown
 * by an EventTarget listener: it is re-thrown from a microtask (`queueMicrotask(() => { throw e
 * })`), so it shows up as an uncaught error (window "error" event in browsers,
 * "uncaughtException" on Node). Pass a `report` function to the constructor to handle it
 * differently.
 */

/** A listener of one event of the map. */
export type Listener<A> = (arg: A) => void;

/** How an exception thrown by a listener is reported. */
export type ListenerErrorReporter = (error: unknown) => void;

/** Default reporter: re-throw asynchronously, as EventTarget does. */
export const rethrowAsync: ListenerErrorReporter = (error) => {
  queueMicrotask(() => {
    throw error;
  });
};

/**
 * `M` is the event map: event name → the type of the one argument its listeners receive (an
 * interface or a type literal).
 */
export class Emitter<M extends object> {
  readonly #listeners = new Map<keyof M, Listener<never>[]>();
  readonly #report: ListenerErrorReporter;

  constructor(report: ListenerErrorReporter = rethrowAsync) {
    this.#report = report;
  }

  /** Add a listener; returns a function that removes it. Adding the same function twice adds it twice. */
  on<K extends keyof M>(event: K, listener: Listener<M[K]>): () => void {
    const list = this.#listeners.get(event);
    // Copy on write: an emit() in progress keeps iterating over the list it started with.
    this.#listeners.set(event, list === undefined ? [listener] : [...list, listener]);
    return () => this.off(event, listener);
  }

  /** Add a listener that is removed before its first call. */
  once<K extends keyof M>(event: K, listener: Listener<M[K]>): () => void {
    const wrapper: Listener<M[K]> = (arg) => {
      this.off(event, wrapper);
      listener(arg);
    };
    onceTargets.set(wrapper, listener);
    return this.on(event, wrapper);
  }

  /** Remove one registration of the listener (the latest added, whether by on() or once()). */
  off<K extends keyof M>(event: K, listener: Listener<M[K]>): void {
    const list = this.#listeners.get(event) as Listener<M[K]>[] | undefined;
    if (list === undefined) return;
    let index = list.lastIndexOf(listener);
    if (index < 0) index = list.findLastIndex((l) => onceTargets.get(l) === listener);
    if (index < 0) return;
    const next = list.filter((_, i) => i !== index);
    if (next.length === 0) this.#listeners.delete(event);
    else this.#listeners.set(event, next);
  }

  /** Call every listener of the event with `arg`, in the order they were added. */
  emit<K extends keyof M>(event: K, arg: M[K]): void {
    const list = this.#listeners.get(event) as Listener<M[K]>[] | undefined;
    if (list === undefined) return;
    for (const listener of list) {
      try {
        listener(arg);
      } catch (error) {
        this.#report(error);
      }
    }
  }

  /** Number of listeners of the event. */
  listenerCount(event: keyof M): number {
    return this.#listeners.get(event)?.length ?? 0;
  }
}

/** once() wrappers → the listener they wrap, so off(event, listener) removes a once(). */
const onceTargets = new WeakMap<Listener<never>, Listener<never>>();
