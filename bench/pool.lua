-- wrk script: replays pre-signed requests, one file per wrk thread, lines of
-- "webhook-id <TAB> webhook-timestamp <TAB> webhook-signature <TAB> body".
-- Arguments after `--`: pool prefix, request path, delay in ms between requests of a connection.
local threads_made = 0

function setup(thread)
  thread:set("serial", threads_made)
  threads_made = threads_made + 1
end

function init(args)
  requests = {}
  local prefix, path = args[1], args[2]
  pause = tonumber(args[3] or "0")
  for line in io.lines(prefix .. "." .. serial) do
    local id, stamp, signature, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
    requests[#requests + 1] = wrk.format("POST", path, {
      ["webhook-id"] = id,
      ["webhook-timestamp"] = stamp,
      ["webhook-signature"] = signature,
      ["Content-Type"] = "application/json",
    }, body)
  end
  next_request = 0
end

function request()
  next_request = next_request % #requests + 1
  return requests[next_request]
end

function delay()
  return pause
end
