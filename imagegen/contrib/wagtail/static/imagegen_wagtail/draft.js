/* An image's alt text draft, offered in its alt text input: the chooser's
   confirm step (imagegen_wagtail/chooser/confirm.html) and Wagtail's image
   edit page (imagegen_wagtail/includes/description_draft.html).
   The root ([data-imagegen-draft]) names the input (data-draft-field) and
   holds the note (imagegen_wagtail/includes/draft_note.html); on the edit
   page it is moved beside the input, and a ready draft (data-draft) goes
   into the input while it is empty. While the draft is pending, the job's
   status JSON (data-status-url: its images' alt_text_draft_state) is read
   every few seconds until the draft is in. A draft goes into the input
   once, while it is empty and the editor has not typed there, marked
   "Drafted — check it": it is saved only when the editor saves the form. */
'use strict';
{
    // 3 s apart: 5 minutes at most, as the Django admin's job page.
    const READS = 100;
    const WAIT = 3000;

    const offer = (root) => {
        const note = root.querySelector('[data-role=draft-note]');
        const selector = `[name="${root.dataset.draftField}"]`;
        // The confirm step's input is inside the root; the edit page's, in the form around it.
        const form = root.closest('form');
        const field = root.querySelector(selector) || (form && form.querySelector(selector));
        if (!note || !field) { return; }
        let reads = 0;
        let typed = false;

        const put = (text) => {
            field.value = text;
            field.dataset.draft = '';
            field.classList.add('is-draft');
            note.dataset.state = 'ready';
        };

        const show = (image) => {
            const state = image.alt_text_draft_state;
            if (state === 'ready' && image.alt_text_draft && !field.value && !typed) {
                put(image.alt_text_draft);
            } else if (state === 'failed' && !field.value && !typed) {
                note.dataset.state = 'failed';
            } else {
                note.dataset.state = '';
            }
        };

        const read = async () => {
            // The page moved on (the modal chose, closed, went to another step): stop.
            if (!root.isConnected) { return; }
            reads += 1;
            let image = null;
            try {
                const response = await fetch(root.dataset.statusUrl, {
                    credentials: 'same-origin',
                    headers: { Accept: 'application/json' },
                    cache: 'no-cache',
                });
                if (response.ok) {
                    const job = await response.json();
                    image = (job.images || []).find(
                        (each) => String(each.id) === root.dataset.imageId,
                    );
                }
            } catch (error) {
                image = null; // no answer: try again at the next read
            }
            if (image && image.alt_text_draft_state !== 'pending') {
                show(image);
            } else if (reads < READS) {
                window.setTimeout(read, WAIT);
            } else {
                note.dataset.state = '';
            }
        };

        if (!root.contains(field)) {
            // Beside the input's own field wrapper (Wagtail's formatted field).
            (field.closest('.w-field__wrapper') || field).after(root);
        }
        if (note.dataset.state === 'ready' && root.dataset.draft !== undefined && !field.value) {
            put(root.dataset.draft);
        }
        if (root.dataset.statusUrl && note.dataset.state === 'pending') {
            window.setTimeout(read, WAIT);
        }
        // What the editor typed (or cleared) stands: no draft comes in over it.
        field.addEventListener('input', () => {
            typed = true;
            if (field.dataset.draft !== undefined && !field.value) {
                field.classList.remove('is-draft');
                note.dataset.state = '';
            }
        });
    };

    document.querySelectorAll('[data-imagegen-draft]:not([data-offered])').forEach((root) => {
        root.dataset.offered = '';
        offer(root);
    });
}
