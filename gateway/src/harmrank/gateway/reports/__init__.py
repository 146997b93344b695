"""Reports of annotators ' figures: summary JSON, headline tables, PNG figures, HTML and Markdown.

Used by ``harmrank reproduce`` and by the gateway for runs and datasets alike."""
