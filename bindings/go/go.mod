module tel.dev/tel

go 1.19
