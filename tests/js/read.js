// Reads one harvester export with citation-js and prints what it understood as CSL-JSON.
// usage: node read.js bibtex|ris|csljson FILE   (tests/test_export_readers.py runs it)
'use strict'
const fs = require('fs')
const { Cite } = require('@citation-js/core')
require('@citation-js/plugin-bibtex')
require('@citation-js/plugin-ris')

const FORMATS = { bibtex: '@biblatex/text', ris: '@ris/file', csljson: '@csl/list+object' }
const [format, file] = process.argv.slice(2)
if (!FORMATS[format] || !file) {
  process.stderr.write('usage: node read.js bibtex|ris|csljson FILE\n')
  process.exit(2)
}
const text = fs.readFileSync(file, 'utf8')
const input = format === 'csljson' ? JSON.parse(text) : text
const items = new Cite(input, { forceType: FORMATS[format] }).data
// _graph is citation-js's record of how it parsed the input (the whole file, per item)
process.stdout.write(JSON.stringify(items.map(({ _graph, ...item }) => item)))
