#!/usr/bin/env python3
# Issue 21, CI gate: sums each smaps snapshot of snap.sh by mapping (heap, glibc arenas,
# mmapped blocks, files), one line per reading. Usage: smaps-by-mapping.py OUTDIR
import sys,re,glob
def parse(p):
    maps=[];cur=None
    for l in open(p):
        if re.match(r'^[0-9a-f]+-[0-9a-f]+ ',l):
            parts=l.split(None,5); cur={'start':int(parts[0].split('-')[0],16),'end':int(parts[0].split('-')[1],16),'name':(parts[5].strip() if len(parts)>5 else ''),'perm':parts[1]}
            maps.append(cur)
        else:
            k=l.split(':')[0]; v=l.split()[1:2]
            if k=='Rss': cur['Rss']=int(v[0])
    return maps
d=sys.argv[1]
files=sorted(glob.glob(d+'/smaps.*'),key=lambda f:int(f.split('.')[-1]))
for f in files:
    m=parse(f); c={}
    for x in m:
        size=(x['end']-x['start'])//1024
        if x['name']=='[heap]': k='heap'
        elif x['name']=='' and x['start']%(64<<20)==0 and x['perm']=='rw-p': k='arena@%x'%(x['start']>>26)
        elif x['name']=='' and x['perm']=='rw-p' and size>=100: k='anon>=100K'
        elif x['name']=='' : k='anon-small'
        elif x['name'].startswith('['): k=x['name']
        else: k='file'
        c[k]=c.get(k,0)+x.get('Rss',0)
    ar=sorted(k for k in c if k.startswith('arena'))
    print(f.split('.')[-1], 'total',sum(c.values()),' '.join(f"{k}={c[k]}" for k in ['heap']+ar+['anon>=100K','anon-small','file'] if k in c))
