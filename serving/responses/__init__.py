"""The OpenAI Responses API (``/v1/responses``) on top of the chat flow.

``request`` translates a Responses body into a chat request, ``answer`` turns
the chat flow's answers back into Responses objects and SSE events, and
``store`` keeps ``store: true`` responses for ``previous_response_id``.
"""
