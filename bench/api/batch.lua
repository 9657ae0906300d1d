-- POST /metadata/v1/tokens/batch with a random body of a file of JSON bodies, one per line
local bodies = {}
local headers = {["Content-Type"] = "application/json", ["Accept-Encoding"] = "gzip"}

function init(args)
  for line in io.lines(args[1]) do
    bodies[#bodies + 1] = line
  end
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 1000)
end

function request()
  return wrk.format("POST", "/metadata/v1/tokens/batch", headers, bodies[math.random(#bodies)])
end
