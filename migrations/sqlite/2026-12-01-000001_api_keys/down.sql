-- Every API key is forgotten: requests carrying one are refused from then on.
DROP TABLE api_keys;
