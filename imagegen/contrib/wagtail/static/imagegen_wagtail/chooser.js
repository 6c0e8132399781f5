/* The end of "Generate image" in Wagtail's image chooser: when the job's
   progress (imagegen/admin/progress.js) shows it succeeded with an image,
   follow the hidden link to Wagtail's "chosen" step for that image. Wagtail's
   chooser script handles the link (data-chooser-modal-choice): it loads the
   step in the modal, which hands the image to whoever opened the chooser. */
'use strict';
{
    const panel = document.getElementById('imagegen-progress');
    const link = document.getElementById('imagegen-choose-link');
    if (panel && link) {
        let chosen = false;
        const choose = () => {
            const status = document.getElementById('imagegen-status');
            const result = panel.querySelector('#imagegen-results [data-image-id]');
            if (chosen || !status || status.dataset.status !== 'succeeded' || !result) {
                return;
            }
            chosen = true;
            observer.disconnect();
            link.href = link.dataset.urlTemplate.replace('{id}', result.dataset.imageId);
            link.click();
        };
        const observer = new MutationObserver(choose);
        observer.observe(panel, {
            subtree: true, childList: true, attributes: true, attributeFilter: ['data-status'],
        });
        // Not at once: this runs while the modal inserts the page, before
        // Wagtail's chooser script has taken over the link.
        window.setTimeout(choose, 0);
    }
}
