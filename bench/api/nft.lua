-- GET /metadata/v1/nft/<random collection>/<random token>: args = principals file, tokens per collection
local principals = {}
local per_collection = 1

function init(args)
  for line in io.lines(args[1]) do
    principals[#principals + 1] = line
  end
  per_collection = tonumber(args[2])
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 1000)
end

function request()
  local principal = principals[math.random(#principals)]
  return wrk.format("GET", "/metadata/v1/nft/" .. principal .. "/" .. math.random(per_collection))
end
