-- Subset of the Stacks Blockchain API (hirosystems/stacks-blockchain-api) Postgres schema:
-- the tables a token-metadata indexer reads (blocks, txs, smart_contracts, contract_logs,
-- nft_events, ft_events, chain_tip). Column names, types and NOT NULL flags follow that
-- project's migrations (migrations/1600000000000_blocks.ts, _001_txs, _004_ft_events,
-- _005_nft_events, _006_contract_logs, _007_smart_contracts, _024_chain_tip, plus the later
-- chain_tip.stx_supply column). node-pg-migrate's 'string' type is Postgres 'text'.
-- Use it to create a Stacks API database for tests and for the local simulated network; the
-- service itself only reads these tables (never writes them) and must not depend on other columns.
-- The simulated network (devnet/chain_db.py) and the tests create their Stacks API database from
-- this file. When the service starts reading another column, add it here from those migrations.

DROP TABLE IF EXISTS blocks, txs, smart_contracts, contract_logs, nft_events, ft_events, chain_tip CASCADE;

CREATE TABLE blocks (
  index_block_hash bytea PRIMARY KEY,
  block_hash bytea NOT NULL,
  block_height integer NOT NULL,
  burn_block_time integer NOT NULL,
  burn_block_hash bytea NOT NULL,
  burn_block_height integer NOT NULL,
  miner_txid bytea NOT NULL,
  parent_index_block_hash bytea NOT NULL,
  parent_block_hash bytea NOT NULL,
  parent_microblock_hash bytea NOT NULL,
  parent_microblock_sequence integer NOT NULL,
  canonical boolean NOT NULL,
  execution_cost_read_count bigint NOT NULL,
  execution_cost_read_length bigint NOT NULL,
  execution_cost_runtime bigint NOT NULL,
  execution_cost_write_count bigint NOT NULL,
  execution_cost_write_length bigint NOT NULL,
  tx_count int NOT NULL DEFAULT 1,
  block_time integer NOT NULL DEFAULT 0,
  signer_bitvec bit varying,
  tenure_height integer,
  signer_signatures bytea[],
  tx_total_size int
);
CREATE INDEX blocks_block_height_index ON blocks (block_height DESC);

CREATE TABLE txs (
  id serial PRIMARY KEY,
  tx_id bytea NOT NULL,
  tx_index smallint NOT NULL,
  raw_result bytea NOT NULL,
  index_block_hash bytea NOT NULL,
  block_hash bytea NOT NULL,
  block_height integer NOT NULL,
  parent_block_hash bytea NOT NULL,
  burn_block_time integer NOT NULL,
  parent_burn_block_time integer NOT NULL,
  type_id smallint NOT NULL,
  anchor_mode smallint NOT NULL,
  status smallint NOT NULL,
  canonical boolean NOT NULL,
  post_conditions bytea NOT NULL,
  nonce integer NOT NULL,
  fee_rate bigint NOT NULL,
  sponsored boolean NOT NULL,
  sponsor_address text,
  sponsor_nonce integer,
  sender_address text NOT NULL,
  origin_hash_mode smallint NOT NULL,
  event_count integer NOT NULL,
  execution_cost_read_count bigint NOT NULL,
  execution_cost_read_length bigint NOT NULL,
  execution_cost_runtime bigint NOT NULL,
  execution_cost_write_count bigint NOT NULL,
  execution_cost_write_length bigint NOT NULL,
  raw_tx bytea NOT NULL,
  microblock_canonical boolean NOT NULL,
  microblock_sequence integer NOT NULL,
  microblock_hash bytea NOT NULL,
  parent_index_block_hash bytea NOT NULL,
  token_transfer_recipient_address text,
  token_transfer_amount bigint,
  token_transfer_memo bytea,
  smart_contract_clarity_version smallint,
  smart_contract_contract_id text,
  smart_contract_source_code text,
  contract_call_contract_id text,
  contract_call_function_name text,
  contract_call_function_args bytea,
  poison_microblock_header_1 bytea,
  poison_microblock_header_2 bytea,
  coinbase_payload bytea,
  coinbase_alt_recipient text,
  coinbase_vrf_proof bytea,
  tenure_change_tenure_consensus_hash bytea,
  tenure_change_prev_tenure_consensus_hash bytea,
  tenure_change_burn_view_consensus_hash bytea,
  tenure_change_previous_tenure_end bytea,
  tenure_change_previous_tenure_blocks integer,
  tenure_change_cause smallint,
  tenure_change_pubkey_hash bytea,
  block_time integer NOT NULL DEFAULT 0,
  burn_block_height integer NOT NULL,
  vm_error text,
  CONSTRAINT unique_tx_id_index_block_hash_microblock_hash UNIQUE (tx_id, index_block_hash, microblock_hash)
);
CREATE INDEX txs_smart_contract_contract_id_index ON txs (smart_contract_contract_id);
CREATE INDEX txs_tx_id_index ON txs (tx_id);

CREATE TABLE smart_contracts (
  id serial PRIMARY KEY,
  tx_id bytea NOT NULL,
  canonical boolean NOT NULL,
  contract_id text NOT NULL,
  block_height integer NOT NULL,
  index_block_hash bytea NOT NULL,
  parent_index_block_hash bytea NOT NULL,
  microblock_hash bytea NOT NULL,
  microblock_sequence integer NOT NULL,
  microblock_canonical boolean NOT NULL,
  clarity_version smallint,
  source_code text NOT NULL,
  abi jsonb NOT NULL
);
CREATE INDEX smart_contracts_contract_id_index ON smart_contracts (contract_id);
CREATE INDEX smart_contracts_block_height_index ON smart_contracts (block_height);

CREATE TABLE contract_logs (
  id serial PRIMARY KEY,
  event_index integer NOT NULL,
  tx_id bytea NOT NULL,
  tx_index smallint NOT NULL,
  block_height integer NOT NULL,
  index_block_hash bytea NOT NULL,
  parent_index_block_hash bytea NOT NULL,
  microblock_hash bytea NOT NULL,
  microblock_sequence integer NOT NULL,
  microblock_canonical boolean NOT NULL,
  canonical boolean NOT NULL,
  contract_identifier text NOT NULL,
  topic text NOT NULL,
  value bytea NOT NULL
);
CREATE INDEX contract_logs_tx_id_index ON contract_logs (tx_id);
CREATE INDEX contract_logs_block_height_index ON contract_logs (block_height);
CREATE INDEX contract_logs_contract_identifier_index ON contract_logs
  (contract_identifier, block_height DESC, microblock_sequence DESC, tx_index DESC, event_index DESC)
  WHERE canonical = TRUE AND microblock_canonical = TRUE;

CREATE TABLE nft_events (
  id serial PRIMARY KEY,
  event_index integer NOT NULL,
  tx_id bytea NOT NULL,
  tx_index smallint NOT NULL,
  block_height integer NOT NULL,
  index_block_hash bytea NOT NULL,
  parent_index_block_hash bytea NOT NULL,
  microblock_hash bytea NOT NULL,
  microblock_sequence integer NOT NULL,
  microblock_canonical boolean NOT NULL,
  canonical boolean NOT NULL,
  asset_event_type_id smallint NOT NULL,
  asset_identifier text NOT NULL,
  value bytea NOT NULL,
  sender text,
  recipient text
);
CREATE INDEX nft_events_asset_identifier_value_index ON nft_events (asset_identifier, value);
CREATE INDEX nft_events_block_height_index ON nft_events (block_height DESC);

CREATE TABLE ft_events (
  id serial PRIMARY KEY,
  event_index integer NOT NULL,
  tx_id bytea NOT NULL,
  tx_index smallint NOT NULL,
  block_height integer NOT NULL,
  index_block_hash bytea NOT NULL,
  parent_index_block_hash bytea NOT NULL,
  microblock_hash bytea NOT NULL,
  microblock_sequence integer NOT NULL,
  microblock_canonical boolean NOT NULL,
  canonical boolean NOT NULL,
  asset_event_type_id smallint NOT NULL,
  asset_identifier text NOT NULL,
  amount numeric NOT NULL,
  sender text,
  recipient text
);

CREATE TABLE chain_tip (
  id bool PRIMARY KEY DEFAULT true,
  block_height integer NOT NULL,
  block_count integer NOT NULL,
  block_hash bytea NOT NULL,
  index_block_hash bytea NOT NULL,
  burn_block_height integer NOT NULL,
  microblock_hash bytea,
  microblock_sequence integer,
  microblock_count integer NOT NULL,
  tx_count integer NOT NULL,
  tx_count_unanchored integer NOT NULL,
  mempool_tx_count int DEFAULT 0,
  mempool_updated_at timestamptz DEFAULT NOW(),
  stx_supply numeric NOT NULL DEFAULT 0,
  CONSTRAINT chain_tip_one_row CHECK (id)
);
