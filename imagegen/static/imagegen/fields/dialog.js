/* The Generate control of a declared field (imagegen.admin.image_fields).
   Opens a <dialog> whose content comes from the server: the prompt is
   rendered there from the form's current values, which this script only
   collects. Picking an image fills the control's hidden inputs; the admin
   fills the field when the form is saved. */
'use strict';
{
    const gettext = window.gettext || ((s) => s);
    const POLL_MS = 1000;
    const dialog = document.createElement('dialog');
    dialog.className = 'imagegen-field-dialog';
    dialog.setAttribute('aria-labelledby', 'imagegen-field-dialog-title');
    let control = null;
    let opener = null;
    let picked = null;
    let timer = null;

    const hidden = (part) => control.querySelector(`[data-part="${part}"]`);

    function rememberJobs() {
        // An add form links the jobs made in it once the object is saved.
        const input = hidden('jobs');
        const ids = new Set(input.value.split(',').filter(Boolean));
        dialog.querySelectorAll('.imagegen-field-job').forEach((job) => ids.add(job.dataset.jobId));
        input.value = [...ids].join(',');
    }

    function formatPrice(unit, count, currency) {
        const places = Math.max(2, (unit.split('.')[1] || '').length);
        return `${(Number(unit) * count).toFixed(places)} ${currency}`;
    }

    function updatePrice() {
        const data = dialog.querySelector('#imagegen-field-pricing');
        const form = dialog.querySelector('form');
        if (!data || !form) { return; }
        const pricing = JSON.parse(data.textContent);
        const resolution = (form.querySelector('[name="resolution"]:checked') || {}).value;
        const count = Number(form.elements.candidates.value) || 1;
        const unit = pricing.prices[resolution];
        const priceEl = dialog.querySelector('#imagegen-price');
        const over = dialog.querySelector('#imagegen-over-budget');
        if (unit === null || unit === undefined) {
            priceEl.textContent = '—';
            if (over) { over.hidden = true; }
            return;
        }
        priceEl.textContent = formatPrice(unit, count, pricing.currency);
        const detail = dialog.querySelector('#imagegen-price-detail');
        if (detail) { detail.textContent = count > 1 ? `(${count} × ${unit} ${pricing.currency})` : ''; }
        if (over) {
            over.hidden = !pricing.budgets.some((b) => Number(unit) * count > Number(b.left));
        }
    }

    function altInput() {
        // The form's own alt field when it is on the form, else the hidden input.
        const name = control.dataset.altInput;
        return (name && opener.form && opener.form.elements[name]) || hidden('alt');
    }

    function show(html) {
        dialog.innerHTML = html;
        picked = null;
        const alt = dialog.querySelector('#imagegen-field-alt');
        if (alt) { alt.value = altInput().value; }
        rememberJobs();
        updatePrice();
        schedule();
    }

    function schedule() {
        clearTimeout(timer);
        if (dialog.open && dialog.querySelector('.imagegen-field-job[data-terminal="false"]')) {
            timer = setTimeout(poll, POLL_MS);
        }
    }

    async function poll() {
        const running = [...dialog.querySelectorAll('.imagegen-field-job[data-terminal="false"]')];
        await Promise.all(running.map(async (job) => {
            try {
                const response = await fetch(job.dataset.url, { credentials: 'same-origin' });
                if (!response.ok) { return; }
                const html = await response.text();
                if (job.isConnected) { job.outerHTML = html; }
            } catch (error) { /* offline for a moment: the next poll tries again */ }
        }));
        schedule();
    }

    async function open(newControl, button) {
        control = newControl;
        opener = button;
        const form = button.form;
        const url = new URL(control.dataset.dialogUrl, window.location.href);
        const limit = Number(control.dataset.valueLimit) || 20000;
        control.dataset.placeholders.split(' ').filter(Boolean).forEach((name) => {
            const input = form && form.elements[name];
            if (input && typeof input.value === 'string') {
                url.searchParams.set(name, input.value.slice(0, limit));
            }
        });
        const response = await fetch(url, { credentials: 'same-origin' });
        const html = await response.text();
        // Outside the admin's form (the dialog has a form of its own); this
        // script runs in <head>, before <body> exists.
        if (!dialog.isConnected) { document.body.append(dialog); }
        if (!dialog.open) { dialog.showModal(); }
        show(html);
        const first = dialog.querySelector('textarea, input:not([type=hidden]), button');
        if (first) { first.focus(); }
    }

    /* "Draft a prompt from the content": the describer drafts a prompt from
       the form's current text (saved or not) into the prompt box, for the
       editor to edit. Nothing is generated or paid for here. */
    async function draftPrompt(button) {
        const box = button.closest('[data-draft-url]');
        const form = button.form;
        const busy = box.querySelector('[data-role=draft-busy]');
        const done = box.querySelector('[data-role=draft-done]');
        const error = box.querySelector('[data-role=draft-error]');
        // The form's text as typed (the server reads only the object's text fields).
        const body = new FormData();
        const limit = Number(control.dataset.valueLimit) || 20000;
        [...(opener.form ? opener.form.elements : [])].forEach((input) => {
            if (input.name && !input.name.startsWith('_imagegen-') && typeof input.value === 'string'
                && (input.tagName === 'TEXTAREA' || ['text', 'search', 'url', 'email'].includes(input.type))) {
                body.set(input.name, input.value.slice(0, limit));
            }
        });
        const csrf = form.elements.csrfmiddlewaretoken.value;
        button.disabled = true;
        busy.hidden = false;
        done.hidden = true;
        error.hidden = true;
        try {
            const response = await fetch(box.dataset.draftUrl, {
                method: 'POST',
                credentials: 'same-origin',
                headers: { Accept: 'application/json', 'X-CSRFToken': csrf },
                body,
            });
            const answer = await response.json().catch(() => ({}));
            if (!response.ok || typeof answer.prompt !== 'string') {
                throw new Error(answer.error || gettext('No prompt could be drafted. Try again, or write the prompt yourself.'));
            }
            const prompt = form.elements.prompt;
            prompt.value = answer.prompt;
            done.hidden = false;
            prompt.focus();
        } catch (failure) {
            error.textContent = failure instanceof TypeError
                ? gettext('The server did not answer. Try again.')
                : failure.message;
            error.hidden = false;
        } finally {
            busy.hidden = true;
            button.disabled = false;
        }
    }

    async function submit(form) {
        const button = form.querySelector('[type=submit]');
        button.disabled = true;
        try {
            const response = await fetch(form.action, {
                method: 'POST',
                credentials: 'same-origin',
                body: new FormData(form),
            });
            show(await response.text());
            // Errors: back to the prompt; jobs made: to their list, which is live.
            const target = dialog.querySelector('.errorlist')
                ? dialog.querySelector('textarea')
                : dialog.querySelector('.imagegen-field-jobs');
            if (target) {
                if (target.tagName === 'UL') { target.tabIndex = -1; }
                target.focus();
            }
        } catch (error) {
            button.disabled = false;
        }
    }

    function pick(candidate) {
        dialog.querySelectorAll('.imagegen-field-candidate').forEach((b) => b.setAttribute('aria-pressed', 'false'));
        candidate.setAttribute('aria-pressed', 'true');
        picked = candidate;
        const alt = dialog.querySelector('#imagegen-field-alt');
        if (alt && !alt.value) { alt.value = candidate.dataset.alt || ''; }
        dialog.querySelector('[data-use]').disabled = false;
    }

    function use() {
        if (!picked) { return; }
        hidden('job').value = picked.dataset.job;
        hidden('index').value = picked.dataset.index;
        const alt = dialog.querySelector('#imagegen-field-alt');
        if (alt) { altInput().value = alt.value; }
        const chosen = hidden('chosen');
        const img = chosen.querySelector('img');
        img.src = picked.dataset.src;
        img.hidden = false;
        chosen.hidden = false;
        dialog.close();
    }

    document.addEventListener('click', (event) => {
        const button = event.target.closest('.imagegen-field__generate');
        if (button) {
            event.preventDefault();
            open(button.closest('.imagegen-field'), button);
            return;
        }
        const unchoose = event.target.closest('.imagegen-field__unchoose');
        if (unchoose) {
            // Back to the field as it is: nothing chosen, nothing filled on save.
            const field = unchoose.closest('.imagegen-field');
            ['job', 'index'].forEach((part) => { field.querySelector(`[data-part="${part}"]`).value = ''; });
            field.querySelector('[data-part="chosen"]').hidden = true;
            field.querySelector('.imagegen-field__generate').focus();
        }
    });
    dialog.addEventListener('click', (event) => {
        const drafting = event.target.closest('[data-draft-prompt]');
        if (drafting) { draftPrompt(drafting); return; }
        const candidate = event.target.closest('.imagegen-field-candidate');
        if (candidate) { pick(candidate); return; }
        if (event.target.closest('[data-use]')) { use(); return; }
        if (event.target.closest('[data-close]')) { dialog.close(); }
    });
    dialog.addEventListener('submit', (event) => {
        event.preventDefault();
        submit(event.target);
    });
    dialog.addEventListener('change', updatePrice);
    dialog.addEventListener('close', () => {
        clearTimeout(timer);
        if (opener) { opener.focus(); }
    });
}
