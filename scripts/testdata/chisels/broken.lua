description = "broken"
function on_event(
