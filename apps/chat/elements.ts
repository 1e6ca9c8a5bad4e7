/** The page's elements the chat drives (index.html); a missing one fails loudly at start. */
import { byId } from "../shared/dom.js";

export const ui = {
  app: byId("app"),
  badge: byId("connection"),
  retry: byId<HTMLButtonElement>("retry-connect"),
  myName: byId("my-name"),
  changeName: byId<HTMLButtonElement>("change-name"),
  roomList: byId("room-list"),
  newRoom: byId<HTMLFormElement>("new-room"),
  newRoomName: byId<HTMLInputElement>("new-room-name"),
  newRoomError: byId("new-room-error"),
  title: byId("room-title"),
  log: byId("log"),
  empty: byId("empty"),
  typing: byId("typing"),
  composer: byId<HTMLFormElement>("composer"),
  input: byId<HTMLTextAreaElement>("composer-input"),
  send: byId<HTMLButtonElement>("composer-send"),
  count: byId("composer-count"),
  presenceList: byId("presence-list"),
  presenceCount: byId("presence-count"),
  peopleCount: byId("people-toggle-count"),
  roomsUnread: byId("rooms-toggle-unread"),
};
