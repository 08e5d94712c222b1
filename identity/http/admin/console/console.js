// The authz admin console: sign in with a session cookie, then manage permissions, restrictions and users
// through the admin API.  No framework and no build step; every value from the API is put into the page with
// textContent, never as HTML.
'use strict';

const API = '/api/v2/barong';
const DECISION = '/api/v2/auth';
const PAGE_SIZE = 100;
const STORE = {csrf: 'authz.console.csrf', mode: 'authz.console.mode', account: 'authz.console.account'};

// ---------------------------------------------------------------------------------------------------------
// The API client.

class ApiError extends Error {
  constructor(status, errors) {
    super(errors.join(', '));
    this.status = status;
    this.errors = errors;
  }
}

function csrf() {
  return sessionStorage.getItem(STORE.csrf) || '';
}

async function answer(response) {
  if (response.status === 204) return {body: null, headers: response.headers};
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    body = null;
  }
  if (!response.ok) {
    const errors = body && Array.isArray(body.errors) && body.errors.length ? body.errors.map(String)
      : ['http.' + response.status];
    throw new ApiError(response.status, errors);
  }
  return {body, headers: response.headers};
}

async function isMissingJwt(response) {
  if (response.status !== 401) return false;
  try {
    const body = await response.clone().json();
    return Array.isArray(body.errors) && body.errors.includes('jwt.decode_and_verify');
  } catch (_) {
    return false;
  }
}

// Sends an admin API request the way the gateway would let it through.
//
// Behind a gateway (Envoy, nginx) the request goes out with the session cookie and the CSRF token; the gateway
// asks the decision endpoint and adds the bearer JWT it mints.  Talking to the service directly, nobody adds
// the JWT and the API answers 401 jwt.decode_and_verify: the page then does what the gateway does — asks the
// decision endpoint about the same method and path (cookie and CSRF token), and repeats the request with the
// Authorization header it got.  A decision other than 200 (no session, no permission, a restriction) is the
// answer.  The mode that worked is remembered for the tab's session, so the direct mode costs no wasted call.
async function call(method, path, body) {
  const headers = {'X-CSRF-Token': csrf(), Accept: 'application/json'};
  const init = {method, headers, credentials: 'same-origin', cache: 'no-store'};
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (sessionStorage.getItem(STORE.mode) !== 'direct') {
    const response = await fetch(path, init);
    if (!(await isMissingJwt(response))) {
      if (response.ok) sessionStorage.setItem(STORE.mode, 'gateway');
      return answer(response);
    }
    sessionStorage.setItem(STORE.mode, 'direct');
  }
  const decision = await fetch(DECISION + path, {
    method,
    headers: {'X-CSRF-Token': csrf()},
    credentials: 'same-origin',
    cache: 'no-store',
  });
  if (decision.status !== 200) return answer(decision);
  const authorization = decision.headers.get('Authorization');
  if (!authorization) throw new ApiError(401, ['console.no_token_from_decision_endpoint']);
  headers.Authorization = authorization;
  return answer(await fetch(path, init));
}

function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(key, String(value));
  }
  const text = search.toString();
  return text ? '?' + text : '';
}

// ---------------------------------------------------------------------------------------------------------
// Page helpers.

const $ = (selector) => document.querySelector(selector);

function showError(error) {
  const box = $('#error');
  box.textContent = '';
  const list = document.createElement('ul');
  const messages = error instanceof ApiError ? error.errors.map((key) => `${error.status}: ${key}`)
    : [String(error && error.message ? error.message : error)];
  for (const message of messages) {
    const item = document.createElement('li');
    item.textContent = message;
    list.appendChild(item);
  }
  box.appendChild(list);
  box.hidden = false;
  $('#status').textContent = '';
}

function showStatus(message) {
  $('#error').hidden = true;
  $('#error').textContent = '';
  $('#status').textContent = message;
}

function cell(row, value) {
  const td = document.createElement('td');
  td.textContent = value === null || value === undefined ? '' : String(value);
  row.appendChild(td);
  return td;
}

function button(label, className, onClick) {
  const element = document.createElement('button');
  element.type = 'button';
  element.className = className;
  element.textContent = label;
  element.addEventListener('click', onClick);
  return element;
}

// Runs an action started by the user: its errors are shown, and the signed-out state is noticed.
async function guarded(action) {
  try {
    await action();
  } catch (error) {
    showError(error);
    if (error instanceof ApiError && error.status === 401 && error.errors.some(isSessionGone)) forgetSession();
  }
}

function isSessionGone(key) {
  return ['authz.invalid_session', 'authz.client_session_mismatch', 'authz.user_not_active',
    'authz.csrf_token_mismatch', 'authz.missing_csrf_token'].includes(key);
}

function formValues(form) {
  const values = {};
  for (const [key, value] of new FormData(form).entries()) values[key] = String(value).trim();
  return values;
}

// ---------------------------------------------------------------------------------------------------------
// Signing in and out.

function showSignedIn(account) {
  $('#account-email').textContent = account.email || '';
  $('#account-role').textContent = account.role || '';
  $('#account').hidden = false;
  $('#sign-in-section').hidden = true;
  $('#console').hidden = false;
}

function forgetSession() {
  for (const key of Object.values(STORE)) sessionStorage.removeItem(key);
  $('#account').hidden = true;
  $('#console').hidden = true;
  $('#sign-in-section').hidden = false;
  $('#sign-in-otp-label').hidden = true;
  $('#sign-in-otp').required = false;
  $('#sign-in-otp').value = '';
}

async function signIn(event) {
  event.preventDefault();
  const values = formValues(event.target);
  const body = {email: values.email, password: $('#sign-in-password').value};
  if (values.otp_code) body.otp_code = values.otp_code;
  try {
    const response = await fetch(API + '/identity/sessions', {
      method: 'POST',
      headers: {'Content-Type': 'application/json', Accept: 'application/json'},
      credentials: 'same-origin',
      body: JSON.stringify(body),
    });
    const {body: user} = await answer(response);
    sessionStorage.setItem(STORE.csrf, user.csrf_token || '');
    sessionStorage.removeItem(STORE.mode);
    const account = {email: user.email, role: user.role, uid: user.uid};
    sessionStorage.setItem(STORE.account, JSON.stringify(account));
    $('#sign-in-password').value = '';
    $('#sign-in-otp').value = '';
    $('#sign-in-otp').required = false;
    $('#sign-in-otp-label').hidden = true;
    showSignedIn(account);
    showStatus(`Signed in as ${account.email}.`);
    await loadAll();
  } catch (error) {
    if (error instanceof ApiError && error.errors.includes('identity.session.missing_otp')) {
      $('#sign-in-otp-label').hidden = false;
      $('#sign-in-otp').required = true;
      $('#sign-in-otp').focus();
    }
    showError(error);
  }
}

async function signOut() {
  try {
    await fetch(API + '/identity/sessions', {
      method: 'DELETE',
      headers: {'X-CSRF-Token': csrf(), Accept: 'application/json'},
      credentials: 'same-origin',
    });
  } finally {
    forgetSession();
    showStatus('Signed out.');
  }
}

// ---------------------------------------------------------------------------------------------------------
// Paginated lists (permissions, restrictions) with an editor form each.

class Collection {
  constructor(name, path, columns, toBody) {
    this.name = name;
    this.path = path;
    this.columns = columns;
    this.toBody = toBody;
    this.page = 1;
    this.total = 0;
    this.form = $(`#${name}-form`);
    this.table = $(`#${name}s-table tbody`);
    this.pager = $(`#${name}s-pager`);
    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      guarded(() => this.save());
    });
    $(`#${name}-cancel`).addEventListener('click', () => this.resetForm());
    for (const step of this.pager.querySelectorAll('button')) {
      step.addEventListener('click', () => guarded(() => this.load(this.page + Number(step.dataset.step))));
    }
  }

  lastPage() {
    return Math.max(1, Math.ceil(this.total / PAGE_SIZE));
  }

  async load(page = this.page) {
    const {body, headers} = await call('GET', this.path + query({page: Math.max(1, page), limit: PAGE_SIZE}));
    this.page = Math.max(1, page);
    this.total = Number(headers.get('Total') || (body || []).length);
    this.render(body || []);
  }

  render(items) {
    this.table.textContent = '';
    for (const item of items) {
      const row = document.createElement('tr');
      row.dataset.id = String(item.id);
      for (const column of this.columns) cell(row, item[column]).className = column;
      const actions = cell(row, '');
      actions.appendChild(button('Edit', 'edit', () => this.edit(item)));
      actions.appendChild(button('Delete', 'delete', () => guarded(() => this.remove(item))));
      this.table.appendChild(row);
    }
    const first = items.length ? (this.page - 1) * PAGE_SIZE + 1 : 0;
    this.pager.querySelector('.summary').textContent =
      `${first}–${first + Math.max(items.length - 1, 0)} of ${this.total} (page ${this.page} of ${this.lastPage()})`;
    const [previous, next] = this.pager.querySelectorAll('button');
    previous.disabled = this.page <= 1;
    next.disabled = this.page >= this.lastPage();
  }

  edit(item) {
    for (const element of this.form.elements) {
      if (element.name && element.name in item) element.value = item[element.name] === null ? '' : item[element.name];
    }
    this.form.elements.id.value = String(item.id);
    $(`#${this.name}-save`).textContent = `Save ${this.name} ${item.id}`;
    $(`#${this.name}-cancel`).hidden = false;
    this.form.scrollIntoView({block: 'nearest'});
  }

  resetForm() {
    this.form.reset();
    this.form.elements.id.value = '';
    $(`#${this.name}-save`).textContent = `Add ${this.name}`;
    $(`#${this.name}-cancel`).hidden = true;
  }

  async save() {
    const values = formValues(this.form);
    const body = this.toBody(values);
    if (values.id) {
      const {body: saved} = await call('PUT', this.path, {id: Number(values.id), ...body});
      this.resetForm();
      await this.load();
      showStatus(`${this.label()} ${saved ? saved.id : values.id} saved.`);
    } else {
      const {body: created} = await call('POST', this.path, body);
      this.resetForm();
      this.total += 1;
      await this.load(this.lastPage());
      showStatus(`${this.label()} ${created ? created.id : ''} added.`);
    }
  }

  async remove(item) {
    if (!window.confirm(`Delete ${this.name} ${item.id}?`)) return;
    await call('DELETE', this.path + query({id: item.id}));
    await this.load(this.page);
    if (!this.table.children.length && this.page > 1) await this.load(this.page - 1);
    showStatus(`${this.label()} ${item.id} deleted.`);
  }

  label() {
    return this.name.charAt(0).toUpperCase() + this.name.slice(1);
  }
}

function permissionBody(values) {
  const body = {role: values.role, verb: values.verb, path: values.path, action: values.action};
  if (values.topic) body.topic = values.topic;
  return body;
}

function restrictionBody(values) {
  const body = {category: values.category, scope: values.scope, value: values.value, state: values.state};
  if (values.code) body.code = /^-?\d+$/.test(values.code) ? Number(values.code) : values.code;
  return body;
}

// ---------------------------------------------------------------------------------------------------------
// Users: look one up, change its role or state.

let currentUser = null;

function showUser(user) {
  currentUser = user;
  $('#user-uid').textContent = user.uid;
  $('#user-email').textContent = user.email;
  $('#user-role').textContent = user.role;
  $('#user-state').textContent = user.state;
  $('#user-level').textContent = String(user.level);
  $('#user-otp').textContent = user.otp ? 'on' : 'off';
  $('#user-details').hidden = false;
}

async function lookUp(text) {
  if (text.includes('@')) {
    const {body} = await call('GET', API + '/admin/users' + query({email: text}));
    const found = (body || []).find((user) => String(user.email).toLowerCase() === text.toLowerCase());
    if (!found) throw new ApiError(404, ['admin.user.doesnt_exist']);
    return found;
  }
  const {body} = await call('GET', API + '/admin/users/' + encodeURIComponent(text));
  return body;
}

async function lookUpUser(event) {
  event.preventDefault();
  $('#user-details').hidden = true;
  currentUser = null;
  showUser(await lookUp($('#user-query').value.trim()));
  showStatus(`User ${currentUser.uid} found.`);
}

async function changeUser(path, field, input) {
  if (!currentUser) return;
  const uid = currentUser.uid;
  await call('POST', API + path, {uid, [field]: input.value.trim()});
  showUser((await call('GET', API + '/admin/users/' + encodeURIComponent(uid))).body);
  input.value = '';
  showStatus(`User ${uid}: ${field} changed to ${currentUser[field]}.`);
}

// ---------------------------------------------------------------------------------------------------------

let permissions;
let restrictions;

async function loadAll() {
  for (const collection of [permissions, restrictions]) {
    if ($('#console').hidden) return; // signed out by the previous answer
    await guarded(() => collection.load(1));
  }
}

function start() {
  permissions = new Collection('permission', API + '/admin/permissions',
    ['id', 'role', 'verb', 'path', 'action', 'topic'], permissionBody);
  restrictions = new Collection('restriction', API + '/admin/restrictions',
    ['id', 'category', 'scope', 'value', 'code', 'state'], restrictionBody);
  $('#sign-in-form').addEventListener('submit', signIn);
  $('#sign-out').addEventListener('click', () => guarded(signOut));
  $('#user-lookup-form').addEventListener('submit', (event) => guarded(() => lookUpUser(event)));
  $('#user-role-form').addEventListener('submit', (event) => {
    event.preventDefault();
    guarded(() => changeUser('/admin/users/role', 'role', $('#user-new-role')));
  });
  $('#user-state-form').addEventListener('submit', (event) => {
    event.preventDefault();
    guarded(() => changeUser('/admin/users/update', 'state', $('#user-new-state')));
  });
  const account = sessionStorage.getItem(STORE.account);
  if (csrf() && account) {
    showSignedIn(JSON.parse(account));
    loadAll();
  } else {
    forgetSession();
  }
  document.body.dataset.ready = 'true';
}

document.addEventListener('DOMContentLoaded', start);
