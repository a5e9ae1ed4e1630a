# Prints the table of README.md from the mech-*.json reports in this directory.
import glob, json, os, statistics
here = os.path.dirname(os.path.abspath(__file__))
print('| report | binary | plain scrapes: seconds | plain: shard CPU s | plain: blocking CPU s | gzip scrapes: seconds | gzip: shard CPU s | gzip: blocking CPU s |')
print('|---|---|---|---|---|---|---|---|')
for f in sorted(g for g in glob.glob(os.path.join(here, 'mech-*.json')) if not g.endswith('.fill.json')):
    d = json.load(open(f))
    cell = lambda gz, k: ' '.join('%.2f' % r[k] for r in d['rows'] if r['gzip'] == gz)
    print('| %s | %s | %s | %s | %s | %s | %s | %s |' % (os.path.basename(f), os.path.basename(d['binary']),
          cell(False, 'seconds'), cell(False, 'shard_cpu_s'), cell(False, 'blocking_cpu_s'),
          cell(True, 'seconds'), cell(True, 'shard_cpu_s'), cell(True, 'blocking_cpu_s')))
