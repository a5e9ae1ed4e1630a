import sys, collections, re
# attribute each sample: leaf category -> first ringgate frame (non-generic)
samples=[]; cur=[]
for line in open(sys.argv[1]):
    if not line.strip():
        if cur: samples.append(cur); cur=[]
        continue
    if not line.startswith('\t'): cur=[]; continue
    parts=line.strip().split(' ',1)
    if len(parts)==2: cur.append(parts[1])
if cur: samples.append(cur)
n=len(samples)
def leafcat(fr):
    l=fr[0]
    for k in ['memset','memmove','memcpy','memcmp','_int_malloc','_int_free','malloc_consolidate','unlink_chunk','deflate','crc32','page_fault','clear_page','_copy_from_iter','_copy_to_iter','munmap']:
        if k in l: return k
    if any('page_fault' in f for f in fr): return 'page_fault*'
    if any('munmap' in f for f in fr): return 'munmap*'
    if any('malloc' in f or '_int_free' in f or 'cfree' in f for f in fr[:6]): return 'malloc*'
    if l.startswith('ringgate::'): return 'self:'+l.split(' ')[0][:60]
    return 'other:'+l[:50]
def owner(fr):
    for f in fr:
        f=f.replace(' (inlined)','')
        if f.startswith('ringgate::') and not any(x in f for x in ['{{closure}}::{{closure}}']):
            return f[:70]
    return '?'
tot=collections.Counter(); pair=collections.Counter(); own=collections.Counter()
for fr in samples:
    c=leafcat(fr); o=owner(fr); tot[c]+=1; pair[(c,o)]+=1; own[o]+=1
print('samples',n)
print('--- by leaf category'); 
for c,k in tot.most_common(25): print('%5.1f%% %s'%(100*k/n,c))
print('--- by first ringgate frame')
for c,k in own.most_common(25): print('%5.1f%% %s'%(100*k/n,c))
print('--- pairs')
for (c,o),k in pair.most_common(45): print('%5.1f%% %-22s %s'%(100*k/n,c,o))
