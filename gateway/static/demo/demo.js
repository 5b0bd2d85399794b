// The demo's live contact list: a page of the contacts of every provider at a time (newest
// first, more as the list is scrolled), kept current by the recordChanged subscription over
// a WebSocket, speaking graphql-transport-ws by hand. Served by the gateway next to its
// GraphQL endpoint; its Content-Security-Policy allows this script and connections to the
// gateway itself, nothing else.
"use strict";

const GRAPHQL = new URL("graphql", window.location.href);
const PAGE = 25;
const FIELDS = "id provider name emails { address } createdAt";
const CONTACTS = `query Contacts($providers: [String!], $after: String) {
  contacts(providers: $providers, orderBy: {field: CREATED_AT, direction: DESC},
           first: ${PAGE}, after: $after) {
    edges { node { ${FIELDS} } }
    pageInfo { hasNextPage endCursor }
  }
}`;
const CHANGES = `subscription Changes($providers: [String!]) {
  recordChanged(providers: $providers, types: [CONTACT]) {
    kind id record { ... on Contact { ${FIELDS} } }
  }
}`;

const rows = document.getElementById("contacts");
const more = document.getElementById("more");
const status = document.getElementById("status");

async function query(text, variables) {
  const response = await fetch(GRAPHQL, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json" },
    body: JSON.stringify({ query: text, variables }),
  });
  const body = await response.json();
  if (body.errors) {
    throw new Error(body.errors.map((error) => error.message).join("; "));
  }
  return body.data;
}

function cells(row, contact) {
  const email = contact.emails.length ? contact.emails[0].address : "";
  const created = contact.createdAt ? new Date(contact.createdAt).toLocaleString() : "";
  row.replaceChildren();
  for (const [name, text] of [
    ["provider", contact.provider],
    ["name", contact.name || ""],
    ["email", email],
    ["created", created],
  ]) {
    const cell = document.createElement("td");
    cell.className = name;
    cell.textContent = text;
    row.append(cell);
  }
}

function rowOf(id) {
  return rows.querySelector(`tr[data-id="${CSS.escape(id)}"]`);
}

function show(contact, atTop) {
  let row = rowOf(contact.id);
  if (row === null) {
    row = document.createElement("tr");
    row.dataset.id = contact.id;
    if (atTop) rows.prepend(row);
    else rows.append(row);
  }
  cells(row, contact);
  return row;
}

function changed(event) {
  const row = rowOf(event.id);
  if (event.kind === "DELETED" || event.record === null) {
    if (row !== null) row.remove();
    return;
  }
  // A contact further down than the list has been read arrives when it is scrolled to.
  if (row === null && event.kind !== "CREATED") return;
  const shown = show(event.record, true);
  shown.classList.remove("changed");
  void shown.offsetWidth; // restart the highlight
  shown.classList.add("changed");
}

let providers = [];
let after = null;
let hasMore = true;
let loading = false;

async function loadMore() {
  if (loading || !hasMore) return;
  loading = true;
  try {
    const data = await query(CONTACTS, { providers, after });
    for (const edge of data.contacts.edges) show(edge.node, false);
    ({ hasNextPage: hasMore, endCursor: after } = data.contacts.pageInfo);
    more.textContent = hasMore ? "Scroll for more" : "That is every contact.";
  } catch (error) {
    more.textContent = `Could not read the contacts: ${error.message}`;
  } finally {
    loading = false;
  }
  // A short first page leaves the sentinel in view: the observer does not fire again.
  if (hasMore && more.getBoundingClientRect().top < window.innerHeight) loadMore();
}

function setStatus(state, text) {
  status.dataset.state = state;
  status.textContent = text;
}

let retry = 500;

function subscribe() {
  const url = new URL(GRAPHQL);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(url, "graphql-transport-ws");
  const send = (message) => socket.send(JSON.stringify(message));
  socket.onopen = () => send({ type: "connection_init", payload: {} });
  socket.onmessage = (message) => {
    const data = JSON.parse(message.data);
    if (data.type === "connection_ack") {
      retry = 500;
      send({ id: "changes", type: "subscribe", payload: { query: CHANGES, variables: { providers } } });
      setStatus("live", "live");
    } else if (data.type === "ping") {
      send({ type: "pong" });
    } else if (data.type === "next" && data.payload.data) {
      changed(data.payload.data.recordChanged);
    } else if (data.type === "error" || data.type === "complete") {
      socket.close();
    }
  };
  socket.onclose = () => {
    setStatus("reconnecting", "reconnecting…");
    window.setTimeout(subscribe, retry);
    retry = Math.min(retry * 2, 10000);
  };
}

async function start() {
  try {
    const data = await query("{ providers { name capabilities { entities } } }");
    providers = data.providers
      .filter((provider) => provider.capabilities.entities.includes("CONTACT"))
      .map((provider) => provider.name);
  } catch (error) {
    more.textContent = `Could not reach the gateway: ${error.message}`;
    return;
  }
  subscribe();
  new IntersectionObserver((seen) => {
    if (seen.some((entry) => entry.isIntersecting)) loadMore();
  }).observe(more);
}

start();
