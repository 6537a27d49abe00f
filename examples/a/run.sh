#!/bin/sh
echo hello from A
