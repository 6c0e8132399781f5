/* Reference URLs (imagegen.admin.widgets.ReferenceUrlsWidget): one preview
   per http(s) line, in an aligned row; a sentence instead of an image that
   does not load, a note for a line that is not an address. The number of
   usable URLs is kept in the textarea's data-valid-count for the counts of
   references. The server checks every URL again; this only informs. */
'use strict';
{
    const isUrl = (line) => {
        if (!/^https?:\/\/\S+$/i.test(line)) { return false; }
        try { return Boolean(new URL(line).host); } catch (error) { return false; }
    };

    function attach(list) {
        const area = document.getElementById(list.dataset.for);
        if (!area) { return; }
        const seen = new Map(); // url -> its item, so typing does not reload every image

        function item(url) {
            if (seen.has(url)) { return seen.get(url); }
            const li = document.createElement('li');
            li.className = 'imagegen-url-list__item';
            const img = document.createElement('img');
            img.alt = '';
            img.loading = 'lazy';
            img.referrerPolicy = 'no-referrer';
            img.addEventListener('error', () => {
                li.classList.add('is-broken');
                const note = document.createElement('span');
                note.className = 'imagegen-url-list__note';
                note.textContent = list.dataset.failed;
                img.replaceWith(note);
            });
            img.src = url;
            li.title = url;
            li.append(img);
            seen.set(url, li);
            return li;
        }

        function update() {
            const items = [];
            let valid = 0;
            area.value.split('\n').forEach((raw, index) => {
                const line = raw.trim();
                if (!line) { return; }
                if (isUrl(line)) {
                    valid += 1;
                    items.push(item(line));
                    return;
                }
                const li = document.createElement('li');
                li.className = 'imagegen-url-list__item is-invalid';
                li.textContent = list.dataset.invalid.replace('%(line)s', String(index + 1));
                items.push(li);
            });
            list.replaceChildren(...items);
            list.hidden = items.length === 0;
            if (area.dataset.validCount !== String(valid)) {
                area.dataset.validCount = String(valid);
                area.dispatchEvent(new CustomEvent('imagegen:reference-urls', { bubbles: true, detail: { valid } }));
            }
        }

        area.addEventListener('input', update);
        update();
    }

    // Form media load in the page's head, before the form exists.
    const attachAll = () => document.querySelectorAll('.imagegen-url-list[data-for]').forEach(attach);
    if (document.readyState === 'loading') {
        document.addEventListener('DOMContentLoaded', attachAll);
    } else {
        attachAll();
    }
}
