-- GET /metadata/v1/ft at a random page of `limit` 20, in a random order: args = number of FTs
local fts = 20
local orders = { "order_by=name&order=asc", "order_by=name&order=desc",
                 "order_by=symbol&order=asc", "order_by=symbol&order=desc" }

function init(args)
  fts = tonumber(args[1])
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 1000)
end

function request()
  local offset = 20 * math.random(0, math.floor(fts / 20) - 1)
  local order = orders[math.random(#orders)]
  return wrk.format("GET", "/metadata/v1/ft?limit=20&offset=" .. offset .. "&" .. order)
end
