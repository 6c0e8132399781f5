/* filer's image page, for an image imagegen made
   (imagegen_filer/draft_note.html): the note on the alt text draft goes
   beside the alt text input, and a ready draft (data-draft) into that input
   while it is empty, marked "Drafted — check it": it is saved only when the
   editor saves the form. An editor who clears it does not get it back. */
'use strict';
{
    const note = document.querySelector('[data-imagegen-filer-draft]');
    const form = note && note.closest('form');
    const field = form && form.querySelector(`[name="${note.dataset.draftField}"]`);
    if (note && field) {
        const row = field.closest('.form-row');
        (row ? row.querySelector(':scope > div') || row : field.parentElement).append(note);
        if (note.dataset.state === 'ready' && note.dataset.draft !== undefined && !field.value) {
            field.value = note.dataset.draft;
            field.dataset.draft = '';
            field.classList.add('is-draft');
        }
        field.addEventListener('input', () => {
            if (field.dataset.draft !== undefined && !field.value) {
                field.classList.remove('is-draft');
                note.hidden = true;
            }
        });
    }
}
