module example.invalid/tel-example

go 1.19
