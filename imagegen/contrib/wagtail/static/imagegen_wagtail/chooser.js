/* The end of "Generate image" in Wagtail's image chooser: when the job's
   progress (imagegen_wagtail/progress.js) shows it succeeded with an image,
   follow the hidden link to the confirm step for that image (its title and
   alt text), whose form then leads to Wagtail's "chosen" step. Wagtail's
   chooser script handles the link (data-chooser-modal-choice): it loads the
   step in the modal. */
'use strict';
{
    const panel = document.getElementById('imagegen-progress');
    const link = document.getElementById('imagegen-choose-link');
    if (panel && link) {
        let followed = false;
        const follow = () => {
            const status = document.getElementById('imagegen-status');
            const result = panel.querySelector('#imagegen-results [data-image-id]');
            if (followed || !status || status.dataset.status !== 'succeeded' || !result) {
                return;
            }
            followed = true;
            observer.disconnect();
            link.href = link.dataset.urlTemplate.replace('{id}', result.dataset.imageId);
            link.click();
        };
        const observer = new MutationObserver(follow);
        observer.observe(panel, {
            subtree: true, childList: true, attributes: true, attributeFilter: ['data-status'],
        });
        // Not at once: this runs while the modal inserts the page, before
        // Wagtail's chooser script has taken over the link.
        window.setTimeout(follow, 0);
    }
}
